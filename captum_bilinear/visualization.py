"""Plots of interactions, built on :mod:`captum.attr.visualization`.

Heat maps over an image are drawn by Captum's ``visualize_image_attr`` (blended heat map);
captions are coloured token by token. Colours are diverging red (positive) / blue
(negative), centred at 0, with **one colour scale per figure**: Captum normalizes each
map by its own maximum, so the panels here are re-scaled to the figure's common
``scale`` after Captum has drawn them.
"""

from typing import Any, List, Optional, Sequence, Tuple, Union

import matplotlib.colors as mcolors
import matplotlib.patches as mpatches
import numpy as np
import torch
from captum.attr import visualization as captum_visualization
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from torch import Tensor

from captum_bilinear._utils.checks import check_box, check_pair
from captum_bilinear.selection import box_token_map, span_image_map, upsample_map

#: Diverging colour map: blue negative, white zero, red positive.
CMAP = "bwr"


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().float().numpy()
    return np.asarray(value)


def image_array(image: Any) -> np.ndarray:
    """An image as ``(height, width, 3)`` floats in ``[0, 1]`` from a PIL image, a uint8
    array ``(H, W, 3)`` or a float tensor ``(3, H, W)`` / ``(H, W, 3)`` in ``[0, 1]``.

    Example:
        >>> image_array(np.zeros((2, 2, 3), dtype=np.uint8)).shape
        (2, 2, 3)
    """
    array = np.asarray(image) if not isinstance(image, Tensor) else _numpy(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.transpose(array, (1, 2, 0))
    if array.ndim != 3 or array.shape[-1] not in (1, 3):
        raise ValueError(f"image: expected (height, width, 3) or (3, height, width), got shape {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    return np.clip(array.astype(np.float64), 0.0, 1.0)


def common_scale(*maps: Any, outlier_perc: float = 0.0) -> float:
    """The one colour scale of a figure: the largest absolute value over all ``maps``, or,
    with ``outlier_perc`` > 0, the ``100 - outlier_perc`` percentile of all their absolute
    values, so that the top ``outlier_perc`` percent of the values saturate (Captum's
    ``visualize_image_attr`` clips outliers per map; here one threshold serves all maps).
    1.0 if the maps are all zero.

    Example:
        >>> common_scale(torch.tensor([1.0, -3.0]), [0.5])
        3.0
        >>> common_scale(torch.tensor([1.0] * 99 + [-100.0]), outlier_perc=2)
        1.0
    """
    values = np.concatenate([np.abs(_numpy(m)).ravel() for m in maps if np.size(_numpy(m))] or [np.zeros(1)])
    largest = float(np.percentile(values, 100.0 - outlier_perc)) if outlier_perc > 0 else float(values.max())
    return largest if largest > 0 else 1.0


def colour_of(value: float, scale: float) -> Tuple[float, float, float, float]:
    """The RGBA colour of ``value`` on the diverging map with limits ``+-scale``.

    Example:
        >>> [round(c, 2) for c in colour_of(0.0, 1.0)], colour_of(2.0, 1.0)
        ([1.0, 1.0, 1.0, 1.0], (1.0, 0.0, 0.0, 1.0))
    """
    normalized = (float(np.clip(value / scale, -1, 1)) + 1) / 2
    return tuple(float(c) for c in plt.get_cmap(CMAP)(normalized))  # type: ignore[return-value]


def image_heatmap(
    image: Any,
    image_map: Any,
    ax: Optional[Axes] = None,
    scale: Optional[float] = None,
    title: Optional[str] = None,
    box: Optional[Sequence[float]] = None,
    alpha: float = 0.6,
    mode: str = "nearest",
) -> Axes:
    """A patch map (or pixel map) blended over the image with Captum's ``visualize_image_attr``.

    Args:
        image: the image the map belongs to (see :func:`image_array`).
        image_map: ``(grid_h, grid_w)`` patch values or ``(height, width)`` pixel values.
        ax: the axes to draw on (default: a new figure).
        scale: the colour limit ``+-scale`` (default: the map's own largest magnitude).
        title: the axes title.
        box: an optional ``(x0, y0, x1, y1)`` box to outline.
        alpha: opacity of the heat map over the image.
        mode: ``"nearest"`` (each patch covers its pixels) or ``"bilinear"`` upsampling.

    Returns:
        The axes.

    Example:
        >>> ax = image_heatmap(np.zeros((16, 16, 3)), torch.tensor([[1.0, -1.0], [0.0, 0.5]]))
        >>> ax.images[-1].get_clim()
        (-1.0, 1.0)
    """
    picture = image_array(image)
    height, width = picture.shape[:2]
    values = torch.as_tensor(_numpy(image_map), dtype=torch.float64)
    pixels = values.numpy() if tuple(values.shape) == (height, width) else upsample_map(values, (height, width), mode).numpy()
    scale = common_scale(pixels) if scale is None else float(scale)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    # Captum draws the image and its blended heat map; an all-zero map cannot be
    # normalized by Captum, so it draws a placeholder whose data is replaced below.
    scaled = np.clip(pixels / scale, -1, 1)
    drawn = scaled if np.abs(scaled).max() > 0 else np.ones_like(scaled)
    captum_visualization.visualize_image_attr(
        drawn[..., None], picture, method="blended_heat_map", sign="all", plt_fig_axis=(ax.figure, ax),
        outlier_perc=1e-6, cmap=CMAP, alpha_overlay=alpha, use_pyplot=False,
    )
    heat = ax.images[-1]
    heat.set_data(scaled)
    heat.set_clim(-1.0, 1.0)
    if box is not None:
        x0, y0, x1, y1 = check_box(box, (height, width))
        ax.add_patch(mpatches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="lime", linewidth=2))
    if title:
        ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def caption_colours(
    ax: Axes,
    tokens: Sequence[str],
    values: Optional[Sequence[float]] = None,
    scale: Optional[float] = None,
    highlight: Union[None, Tuple[int, int], Sequence[Tuple[int, int]]] = None,
    fontsize: int = 11,
) -> Axes:
    """Draws a caption token by token on ``ax``, each token's background coloured by its
    value (red positive, blue negative, limits ``+-scale``), wrapping at the axes' width;
    ``highlight`` = a span ``(start, stop)`` or several, drawn bold and outlined.

    Example:
        >>> fig, ax = plt.subplots()
        >>> caption_colours(ax, ["a", "red", "circle"], [0.0, 1.0, -0.5]).texts[1].get_text()
        'red'
    """
    if values is not None and len(values) != len(tokens):
        raise ValueError(f"values: expected {len(tokens)} values, one per token, got {len(values)}")
    spans = [] if highlight is None else ([highlight] if isinstance(highlight[0], int) else list(highlight))
    scale = common_scale(values) if (scale is None and values is not None) else (scale or 1.0)
    ax.set_axis_off()
    renderer = ax.figure.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)  # display units (pixels)
    gap = 0.45 * fontsize * ax.figure.dpi / 72.0  # about a space, in pixels
    x, y = axes_box.x0, axes_box.y1
    for index, token in enumerate(tokens):
        colour = colour_of(values[index], scale) if values is not None else (1.0, 1.0, 1.0, 1.0)
        strong = any(start <= index < stop for start, stop in spans)
        text = ax.text(
            x, y, token, transform=None, va="top", ha="left", fontsize=fontsize,
            fontweight="bold" if strong else "normal",
            bbox=dict(facecolor=colour, edgecolor="black" if strong else "none", boxstyle="round,pad=0.2"),
        )
        extent = text.get_window_extent(renderer)
        if extent.x1 > axes_box.x1 and x > axes_box.x0:  # wrap to the next line
            x, y = axes_box.x0, y - 1.6 * extent.height
            text.set_position((x, y))
            extent = text.get_window_extent(renderer)
        x = extent.x1 + gap
    # Positions are in pixels of the figure as drawn now; fix them to the axes so that
    # saving at another dpi or size keeps the caption in place.
    to_axes = ax.transAxes.inverted()
    for text in ax.texts:
        text.set_transform(ax.transAxes)
        text.set_position(to_axes.transform(text.get_position()))
    return ax


def caption_html(tokens: Sequence[str], values: Sequence[float], scale: Optional[float] = None) -> str:
    """A caption as HTML, each token's background coloured like :func:`caption_colours`
    (for notebooks: ``IPython.display.HTML(caption_html(...))``).

    Example:
        >>> caption_html(["a", "dog"], [0.0, 1.0]).count("<span")
        2
    """
    if len(values) != len(tokens):
        raise ValueError(f"values: expected {len(tokens)} values, one per token, got {len(values)}")
    scale = common_scale(values) if scale is None else scale
    spans = []
    for token, value in zip(tokens, values):
        colour = mcolors.to_hex(colour_of(float(value), scale))
        escaped = captum_visualization.format_special_tokens(token).replace("<", "&lt;").replace(">", "&gt;")
        spans.append(f'<span style="background-color:{colour};padding:2px 4px;margin:1px;border-radius:3px" '
                     f'title="{float(value):+.4g}">{escaped}</span>')
    return '<div style="line-height:2">' + " ".join(spans) + "</div>"


def plot_interaction_figure(
    image: Any,
    tokens: Sequence[str],
    interactions: Tensor,
    spans: Union[Tuple[int, int], Sequence[Tuple[int, int]]],
    box: Optional[Sequence[float]] = None,
    first_order_map: Optional[Any] = None,
    first_order_title: str = "first-order (Captum)",
    grid_size: Optional[Tuple[int, int]] = None,
    has_cls: bool = True,
    title: Optional[str] = None,
    outlier_perc: float = 2.0,
) -> Figure:
    """The paper's Figure 1 in one call: each caption span's map on the image, an image
    box's colours on the caption, and (optionally) a first-order Captum map of the same
    pair beside them -- all on one colour scale.

    Args:
        image: the image as the model saw it (after resizing / cropping).
        tokens: the caption's token labels (one per side-a position).
        interactions: ``(positions_a, positions_b)`` for this pair (CLS at 0 when ``has_cls``).
        spans: a caption span ``(start, stop)``, or several, each shown as an image map.
        box: optional ``(x0, y0, x1, y1)`` in the image's pixels, whose caption colours
            are shown.
        first_order_map: an optional ``(grid_h, grid_w)`` or pixel map of a first-order
            method (e.g. Captum's ``LayerIntegratedGradients`` of the conditioned similarity).
        first_order_title: its panel title.
        grid_size, has_cls: the image side's patch grid.
        title: the figure title.
        outlier_perc: percent of the panels' values left saturated by the common colour
            scale (default 2, as Captum's ``outlier_perc``), so that a few dominant values
            (often the EOS token's) do not wash out every panel; 0 scales to the maximum.

    Returns:
        The matplotlib figure (save it with ``fig.savefig(path)``).

    Example:
        >>> A = torch.zeros(4, 5); A[1:3, 4] = 1.0
        >>> fig = plot_interaction_figure(np.zeros((16, 16, 3)), ["[BOS]", "red", "dot", "[EOS]"], A, (1, 3),
        ...                               box=(8, 8, 16, 16))
        >>> [ax.get_title() for ax in fig.axes if ax.get_title()]
        ['input, caption spans in bold', '"red dot" -> image', 'box (green) -> caption']
    """
    matrix = torch.as_tensor(_numpy(interactions), dtype=torch.float64)
    if matrix.dim() != 2 or matrix.shape[0] != len(tokens):
        raise ValueError(
            f"interactions: expected (positions_a, positions_b) with positions_a = {len(tokens)} tokens, "
            f"got {tuple(matrix.shape)}"
        )
    span_list: List[Tuple[int, int]] = [tuple(spans)] if isinstance(spans[0], int) else [tuple(s) for s in spans]  # type: ignore[misc]
    picture = image_array(image)
    image_size = check_pair(picture.shape[:2], "image")
    span_maps = [span_image_map(matrix, span, grid_size, has_cls) for span in span_list]
    box_values = box_token_map(matrix, box, image_size, grid_size, has_cls) if box is not None else None
    scale = common_scale(*span_maps, *([box_values] if box_values is not None else []),
                         *([first_order_map] if first_order_map is not None else []), outlier_perc=outlier_perc)
    panels = 1 + len(span_list) + (box is not None) + (first_order_map is not None)
    fig = plt.figure(figsize=(3.4 * panels, 5.6))
    grid = fig.add_gridspec(3, panels, height_ratios=[4, 1.9, 0.2], hspace=0.12)

    def image_with_box(ax: Axes, panel_title: str) -> None:
        ax.imshow(picture)
        if box is not None:
            x0, y0, x1, y1 = check_box(box, image_size)
            ax.add_patch(mpatches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="lime",
                                            linewidth=2))
        ax.set_title(panel_title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])

    image_with_box(fig.add_subplot(grid[0, 0]), "input, caption spans in bold")
    caption_colours(fig.add_subplot(grid[1, 0]), tokens, None, highlight=span_list)
    column = 1
    for span, span_map in zip(span_list, span_maps):
        label = " ".join(tokens[span[0]:span[1]])
        image_heatmap(picture, span_map, fig.add_subplot(grid[0, column]), scale, title=f'"{label}" -> image')
        column += 1
    if box_values is not None:
        image_with_box(fig.add_subplot(grid[0, column]), "box (green) -> caption")
        caption_colours(fig.add_subplot(grid[1, column]), tokens, box_values.tolist(), scale)
        column += 1
    if first_order_map is not None:
        image_heatmap(picture, first_order_map, fig.add_subplot(grid[0, column]), scale, title=first_order_title)
    colourbar_axis = fig.add_subplot(grid[2, 1:] if panels > 1 else grid[2, 0])
    fig.colorbar(ScalarMappable(norm=mcolors.Normalize(-scale, scale), cmap=CMAP), cax=colourbar_axis,
                 orientation="horizontal", label="interaction (similarity units)")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
