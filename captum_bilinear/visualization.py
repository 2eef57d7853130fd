"""Plots of interactions, built on :mod:`captum.attr.visualization`.

Over an image, Captum's ``visualize_image_attr`` draws the image in colour (its
``original_image`` method), muted to half its saturation and to grey under the map's
strongest values, and the map is laid over it with an opacity that grows with the
value's magnitude: where a map is near 0 the scene shows through, its objects' colours
recognisable (Captum's ``blended_heat_map`` greys the whole image instead), and the
map's saturated red and blue stand out even over a red or blue object; its strong
regions are outlined in a dark line on a white halo, visible over any colour. Captions are coloured token by token. Colours are diverging red (positive) /
blue (negative), centred at 0, with **one colour scale per figure and unit**: Captum
normalizes each map by its own maximum, so the panels are drawn on the figure's common
``scale`` instead. Special positions (BOS, EOS, PAD, CLS, SEP) are left out of the colour
scale and drawn neutral, their values written beside them, so that one dominant [EOS]
cannot wash out every other value.
"""

import math
from typing import Any, List, Optional, Sequence, Tuple, Union, cast

import matplotlib.colors as mcolors
import matplotlib.patches as mpatches
import matplotlib.patheffects as patheffects
import numpy as np
import torch
from captum.attr import visualization as captum_visualization
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from torch import Tensor

from captum_bilinear._utils.checks import check_box, check_pair, check_span
from captum_bilinear.selection import SPECIAL_TOKENS, box_token_map, patch_grid, upsample_map

#: Diverging colour map: blue negative, white zero, red positive.
CMAP = "bwr"
#: Background of special positions (not on the colour scale).
NEUTRAL = (0.86, 0.86, 0.86, 1.0)
#: Outlines of a map's negative / positive regions.
CONTOUR_COLOURS = ("navy", "darkred")
#: How much of its colour an image loses under a map (all of it under the map's strongest
#: values): the map's red and blue must stand out over red and blue objects too.
MUTED = 0.5
#: The grey a colour is muted towards: its luminosity as canvas "saturation" blending
#: keeps it (the page mutes its image the same way).
LUMINOSITY = (0.3, 0.59, 0.11)
#: Outline of a box on an image.
BOX_COLOUR = "lime"
#: Image panels per row of :func:`plot_interaction_figure` (more wrap to another row).
MAX_COLUMNS = 6


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
    red, green, blue, alpha = (float(c) for c in plt.get_cmap(CMAP)(normalized))
    return red, green, blue, alpha


def outline_box(ax: Axes, box: Sequence[float], image_size: Tuple[int, int], colour: str = BOX_COLOUR) -> None:
    """Outlines ``box = (x0, y0, x1, y1)`` (pixels, end exclusive) on an image of
    ``image_size = (height, width)`` drawn by ``imshow``.

    Example:
        >>> fig, ax = plt.subplots(); _ = ax.imshow(np.zeros((16, 16, 3)))
        >>> outline_box(ax, (0, 0, 8, 8), (16, 16)); ax.patches[0].get_width()
        8.0
    """
    x0, y0, x1, y1 = check_box(box, image_size)
    ax.add_patch(mpatches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour,
                                    linewidth=2))


def overlay_alpha(scaled: np.ndarray, alpha: float) -> np.ndarray:
    """The opacity of a map laid over its image: ``alpha * |scaled|`` (``scaled`` in
    ``[-1, 1]``), so values near 0 leave the image as it is.

    Example:
        >>> overlay_alpha(np.array([-1.0, 0.0, 0.5]), 0.8)
        array([0.8, 0. , 0.4])
    """
    return alpha * np.clip(np.abs(scaled), 0.0, 1.0)


def desaturated(picture: np.ndarray, amount: Union[float, np.ndarray]) -> np.ndarray:
    """``picture`` (``(H, W, 3)`` in ``[0, 1]``) blended towards its own grey level by
    ``amount`` (a number or ``(H, W)``, in ``[0, 1]``: 0 leaves it, 1 makes it grey).

    Example:
        >>> red = np.zeros((1, 2, 3)); red[..., 0] = 1.0
        >>> desaturated(red, np.array([[0.0, 1.0]]))[0].round(3).tolist()
        [[1.0, 0.0, 0.0], [0.3, 0.3, 0.3]]
    """
    grey = picture @ np.array(LUMINOSITY)
    weight = np.clip(np.asarray(amount, dtype=np.float64), 0.0, 1.0)
    weight = weight[..., None] if weight.ndim else weight
    return picture * (1 - weight) + grey[..., None] * weight


def image_heatmap(
    image: Any,
    image_map: Any,
    ax: Optional[Axes] = None,
    scale: Optional[float] = None,
    title: Optional[str] = None,
    box: Optional[Sequence[float]] = None,
    alpha: float = 0.8,
    mode: str = "nearest",
    contour: Optional[float] = 0.5,
) -> Axes:
    """A patch map (or pixel map) laid over the unchanged colour image: Captum's
    ``visualize_image_attr`` draws the image, the map's colour is laid over it with the
    opacity of :func:`overlay_alpha` (transparent where the map is 0).

    Args:
        image: the image the map belongs to (see :func:`image_array`).
        image_map: ``(grid_h, grid_w)`` patch values or ``(height, width)`` pixel values.
        ax: the axes to draw on (default: a new figure).
        scale: the colour limit ``+-scale`` (default: the map's own largest magnitude).
        title: the axes title.
        box: an optional ``(x0, y0, x1, y1)`` box to outline.
        alpha: opacity of the map's colour at ``+-scale``.
        mode: ``"nearest"`` (each patch covers its pixels) or ``"bilinear"`` upsampling.
        contour: outline where the map passes ``+-contour * scale`` (dark red / dark
            blue), or None for no outline.

    Returns:
        The axes; ``ax.images[-1]`` is the map (its data divided by ``scale``, limits
        ``(-1, 1)``).

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
    scaled = np.clip(pixels / scale, -1, 1)
    # Captum draws the image as it is; it normalizes the map it is given even when it
    # does not draw it, so an all-zero map is replaced by a placeholder there.
    placeholder = scaled if np.abs(scaled).max() > 0 else np.ones_like(scaled)
    # The image is drawn muted (half its colour; wholly grey under the map's strongest
    # values), so that the map's saturated red and blue stand out even over a red or blue
    # object, while the objects' own colours stay recognisable where the map is 0.
    captum_visualization.visualize_image_attr(
        placeholder[..., None], desaturated(picture, MUTED + (1 - MUTED) * np.abs(scaled)), method="original_image",
        plt_fig_axis=(ax.figure, ax), use_pyplot=False,
    )
    ax.imshow(scaled, cmap=CMAP, vmin=-1.0, vmax=1.0, alpha=overlay_alpha(scaled, alpha), interpolation="nearest")
    if contour is not None and 0 < contour < 1:
        # An outline where the map passes +-contour, a dark line on a white halo (solid:
        # positive, dashed: negative): visible over any colour, the map's own included.
        halo = [patheffects.Stroke(linewidth=3.2, foreground="white"), patheffects.Normal()]
        for level, colour, style in ((-contour, CONTOUR_COLOURS[0], "dashed"), (contour, CONTOUR_COLOURS[1], "solid")):
            if (scaled >= level).any() and (scaled < level).any():
                lines = ax.contour(scaled, levels=[level], colors=[colour], linewidths=1.4, linestyles=style)
                for artist in getattr(lines, "collections", None) or [lines]:
                    artist.set_path_effects(halo)
    if box is not None:
        outline_box(ax, box, (height, width))
    if title:
        ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _format(value: float) -> str:
    return f"{value:+.3g}"


def caption_colours(
    ax: Axes,
    tokens: Sequence[str],
    values: Optional[Sequence[float]] = None,
    scale: Optional[float] = None,
    highlight: Union[None, Tuple[int, int], Sequence[Tuple[int, int]]] = None,
    fontsize: int = 11,
    neutral: Sequence[int] = (),
    note: Optional[str] = None,
) -> Axes:
    """Draws a caption token by token on ``ax``, each token's background coloured by its
    value (red positive, blue negative, limits ``+-scale``), wrapping at the axes' width;
    ``highlight`` = a span ``(start, stop)`` or several, drawn bold and outlined; the
    positions in ``neutral`` get a grey background whatever their value; ``note`` is a
    line of small text below the caption.

    Example:
        >>> fig, ax = plt.subplots()
        >>> caption_colours(ax, ["a", "red", "circle"], [0.0, 1.0, -0.5]).texts[1].get_text()
        'red'
    """
    if values is not None and len(values) != len(tokens):
        raise ValueError(f"values: expected {len(tokens)} values, one per token, got {len(values)}")
    spans = [] if highlight is None else _span_list(highlight)
    neutral_set = {int(i) for i in neutral}
    if scale is None and values is not None:
        scale = common_scale([v for i, v in enumerate(values) if i not in neutral_set])
    scale = scale or 1.0
    ax.set_axis_off()
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]  # the Agg canvases'; not in FigureCanvasBase's stubs
    axes_box = ax.get_window_extent(renderer)  # display units (pixels)
    gap = 0.45 * fontsize * ax.figure.dpi / 72.0  # about a space, in pixels
    x, y = axes_box.x0, axes_box.y1
    line_height = 0.0
    for index, token in enumerate(tokens):
        if index in neutral_set or values is None:
            colour = NEUTRAL if index in neutral_set else (1.0, 1.0, 1.0, 1.0)
        else:
            colour = colour_of(values[index], scale)
        strong = any(start <= index < stop for start, stop in spans)
        text = ax.text(
            x, y, token, transform=None, va="top", ha="left", fontsize=fontsize,
            fontweight="bold" if strong else "normal", color="dimgray" if index in neutral_set else "black",
            bbox=dict(facecolor=colour, edgecolor="black" if strong else "none", boxstyle="round,pad=0.2"),
        )
        extent = text.get_window_extent(renderer)
        line_height = max(line_height, extent.height)
        if extent.x1 > axes_box.x1 and x > axes_box.x0:  # wrap to the next line
            x, y = axes_box.x0, y - 1.6 * extent.height
            text.set_position((x, y))
            extent = text.get_window_extent(renderer)
        x = extent.x1 + gap
    if note:
        ax.text(axes_box.x0, y - 1.7 * (line_height or fontsize), note, transform=None, va="top", ha="left",
                fontsize=max(fontsize - 3, 6), style="italic", color="dimgray", wrap=True)
    # Positions are in pixels of the figure as drawn now; fix them to the axes so that
    # saving at another dpi or size keeps the caption in place.
    to_axes = ax.transAxes.inverted()
    for text in ax.texts:
        text.set_transform(ax.transAxes)
        x_axes, y_axes = to_axes.transform(text.get_position())
        text.set_position((x_axes, y_axes))
    return ax


def _span_list(spans: Union[Tuple[int, int], Sequence[Tuple[int, int]]]) -> List[Tuple[int, int]]:
    """One span ``(start, stop)`` or several, as a list of spans."""
    if isinstance(spans[0], int):
        start, stop = cast(Tuple[int, int], spans)
        return [(start, stop)]
    return [(start, stop) for start, stop in cast(Sequence[Tuple[int, int]], spans)]


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


def special_positions(tokens: Sequence[str]) -> List[int]:
    """The positions of special tokens (``[BOS]``, ``[EOS]``, ``[PAD]``, ``[CLS]``,
    ``[SEP]``, as :func:`~captum_bilinear.selection.token_labels` writes them).

    Example:
        >>> special_positions(["[BOS]", "a", "dog", "[EOS]", "[PAD]"])
        [0, 3, 4]
    """
    return [index for index, token in enumerate(tokens) if token in SPECIAL_TOKENS]


def _caption_lines(tokens: Sequence[str], width_inches: float, fontsize: int) -> int:
    characters = sum(len(token) + 2 for token in tokens)
    per_line = max(1, int(width_inches * 72 / (0.62 * fontsize)))
    return max(1, math.ceil(characters / per_line))


def plot_interaction_figure(
    image: Any,
    tokens: Sequence[str],
    interactions: Optional[Tensor],
    spans: Union[Tuple[int, int], Sequence[Tuple[int, int]]],
    box: Optional[Sequence[float]] = None,
    first_order_map: Optional[Any] = None,
    first_order_title: str = "first-order (Captum)",
    grid_size: Optional[Tuple[int, int]] = None,
    has_cls: bool = True,
    title: Optional[str] = None,
    outlier_perc: float = 2.0,
    units: str = "similarity",
    first_order_units: Optional[str] = None,
    special: Optional[Sequence[int]] = None,
    max_columns: int = MAX_COLUMNS,
    span_labels: Optional[Sequence[str]] = None,
    share_first_order_scale: bool = False,
    span_rows: Optional[Tensor] = None,
    box_column: Optional[Tensor] = None,
) -> Figure:
    """The paper's Figure 1 in one call: each caption span's map on the image, an image
    box's colours on the caption, and (optionally) a first-order Captum map of the same
    pair beside them.

    The image panels come first (the input with its box, one per span, the first-order
    map), at most ``max_columns`` to a row; the caption runs below them across the whole
    figure, its tokens coloured by the box's map, the spans in bold; the colour bars name
    their units. Special positions are left out of the colour scale and drawn grey: the
    caption's special tokens (their values in the note under the caption) and the image's
    CLS (its value under each span's panel).

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
            scale (default 2, as Captum's ``outlier_perc``); 0 scales to the maximum.
        units: what the interactions are in (the colour bar's label), e.g.
            :attr:`captum_bilinear.registry.MethodSpec.units`.
        first_order_units: what the first-order map is in (default: ``units``).
        share_first_order_scale: draw the first-order map on the interactions' colour
            scale (only where the units agree). By default it has its own scale and bar: a
            first-order map attributes the whole score and is often far larger than any
            span's interactions, which it would wash out.
        special: caption positions left out of the colour scale (default: the special
            tokens, :func:`special_positions`).
        max_columns: image panels per row.
        span_labels: the spans' panel titles (default: their tokens' labels joined by
            spaces; pass the caption's words where a word is split into several tokens).
        span_rows, box_column: what the figure draws, computed without the whole matrix
            (``interactions=None``; e.g. BII with the spans and the box as groups,
            ``feature_mask``): each span's row ``(len(spans), positions_b)`` and the box's
            column ``(positions_a,)``.

    Returns:
        The matplotlib figure (save it with ``fig.savefig(path)``).

    Example:
        >>> A = torch.zeros(4, 5); A[1:3, 4] = 1.0
        >>> fig = plot_interaction_figure(np.zeros((16, 16, 3)), ["[BOS]", "red", "dot", "[EOS]"], A, (1, 3),
        ...                               box=(8, 8, 16, 16))
        >>> [title for ax in fig.axes for title in (ax.get_title(), ax.get_title(loc="left")) if title]
        ['input, box in green', '"red dot" -> image', 'box (green) -> caption, spans in bold']
    """
    matrix = None if interactions is None else torch.as_tensor(_numpy(interactions), dtype=torch.float64)
    if matrix is None and span_rows is None:
        raise ValueError("interactions: expected (positions_a, positions_b), or span_rows (and box_column) instead")
    if matrix is not None and (matrix.dim() != 2 or matrix.shape[0] != len(tokens)):
        raise ValueError(
            f"interactions: expected (positions_a, positions_b) with positions_a = {len(tokens)} tokens, "
            f"got {tuple(matrix.shape)}"
        )
    if isinstance(max_columns, bool) or not isinstance(max_columns, int) or max_columns < 1:
        raise ValueError(f"max_columns: expected a positive int, got {max_columns!r}")
    span_list = [check_span(span, len(tokens), "spans") for span in _span_list(spans)]
    labels = [" ".join(tokens[start:stop]) for start, stop in span_list] if span_labels is None else list(span_labels)
    if len(labels) != len(span_list):
        raise ValueError(f"span_labels: expected {len(span_list)} labels, one per span, got {len(labels)}")
    picture = image_array(image)
    image_size = check_pair(picture.shape[:2], "image")
    neutral = special_positions(tokens) if special is None else [int(i) for i in special]
    if matrix is not None:
        span_rows = torch.stack([matrix[start:stop].sum(0) for start, stop in span_list])
        box_column = box_token_map(matrix, box, image_size, grid_size, has_cls) if box is not None else None
    span_values = torch.as_tensor(_numpy(span_rows), dtype=torch.float64)
    if span_values.dim() != 2 or span_values.shape[0] != len(span_list):
        raise ValueError(f"span_rows: expected one row per span ({len(span_list)}), got {tuple(span_values.shape)}")
    span_maps = [patch_grid(row, grid_size, has_cls) for row in span_values]
    cls_values = [float(row[0]) for row in span_values] if has_cls else None
    box_values = None if box is None else torch.as_tensor(_numpy(box_column), dtype=torch.float64)
    if box_values is not None and box_values.shape != (len(tokens),):
        raise ValueError(f"box_column: expected one value per token ({len(tokens)}), got {tuple(box_values.shape)}")
    on_scale = [v for i, v in enumerate(box_values.tolist()) if i not in neutral] if box_values is not None else []
    first_order_units = units if first_order_units is None else first_order_units
    separate = first_order_map is not None and not (share_first_order_scale and first_order_units == units)
    shared_first = [first_order_map] if first_order_map is not None and not separate else []
    scale = common_scale(*span_maps, on_scale, *shared_first, outlier_perc=outlier_perc)
    first_scale = common_scale(first_order_map, outlier_perc=outlier_perc) if separate else scale

    panels = 1 + len(span_list) + (first_order_map is not None)
    rows = math.ceil(panels / max_columns)
    columns = math.ceil(panels / rows)  # rows as full as they can be: no empty half row
    # Laid out in inches (image panels square, no space left idle), then in figure fractions.
    panel, gap, title_space, label_space = 2.7, 0.2, 0.3, 0.3
    width = columns * panel + (columns - 1) * gap
    note_lines = 1 if box_values is not None and neutral else 0
    caption_height = 0.3 * _caption_lines(tokens, width, 11) + 0.25 * note_lines
    heading = 0.45 if title else 0.05
    images_height = rows * (title_space + panel + label_space)
    height = heading + images_height + 0.3 + caption_height + 0.15 + 0.2 + 0.45

    def axes_at(left: float, top: float, axes_width: float, axes_height: float) -> Axes:
        """Axes whose top-left corner is ``(left, top)`` inches from the figure's top-left."""
        return fig.add_axes((left / width, 1 - (top + axes_height) / height, axes_width / width, axes_height / height))

    fig = plt.figure(figsize=(width, height))
    cells = iter((row, column) for row in range(rows) for column in range(columns))

    def next_axes() -> Axes:
        row, column = next(cells)
        return axes_at(column * (panel + gap), heading + row * (title_space + panel + label_space) + title_space,
                       panel, panel)

    input_axes = next_axes()
    input_axes.imshow(picture)
    if box is not None:
        outline_box(input_axes, box, image_size)
    input_axes.set_title("input, box in green" if box is not None else "input", fontsize=10)
    input_axes.set_xticks([])
    input_axes.set_yticks([])
    for index, (label, span_map) in enumerate(zip(labels, span_maps)):
        ax = next_axes()
        image_heatmap(picture, span_map, ax, scale, title=f'"{label}" -> image')
        if cls_values is not None:
            ax.set_xlabel(f"CLS (not shown): {_format(cls_values[index])}", fontsize=8, color="dimgray")
    if first_order_map is not None:
        ax = next_axes()
        image_heatmap(picture, first_order_map, ax, first_scale, title=first_order_title)
        if separate:
            ax.set_xlabel(f"its own colour scale ({first_order_units})", fontsize=8, color="dimgray")
    caption_top = heading + images_height + 0.3
    caption_axes = axes_at(0.0, caption_top, width, caption_height)
    note = None
    if box_values is not None and neutral:
        listed = ", ".join(f"{tokens[i]} {_format(float(box_values[i]))}" for i in neutral)
        note = f"grey, not on the colour scale: {listed}"
    caption_colours(caption_axes, tokens, box_values.tolist() if box_values is not None else None, scale,
                    highlight=span_list, neutral=neutral if box_values is not None else (), note=note)
    caption_axes.set_title("box (green) -> caption, spans in bold" if box is not None else "caption, spans in bold",
                           fontsize=10, loc="left")

    bar_top = caption_top + caption_height + 0.15
    if separate:  # the interactions' bar under the interaction panels, the first-order bar under its own
        bars = [(0.0, width - panel - gap, scale, f"interaction ({units})"),
                (width - panel, panel, first_scale, f"{first_order_title} ({first_order_units})")]
    else:
        bars = [(width / 4, width / 2, scale, f"interaction ({units})")]
    for left, bar_width, limit, label in bars:
        # tick labels carry their own exponent: a shared offset ("1e-5") would run into the next bar
        fig.colorbar(ScalarMappable(norm=mcolors.Normalize(-limit, limit), cmap=CMAP),
                     cax=axes_at(left, bar_top, bar_width, 0.2), orientation="horizontal", label=label,
                     format=FuncFormatter(lambda value, _: f"{value:.2g}"))
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def spectrogram_heatmap(
    input_features: Any,
    cell_map: Any,
    ax: Optional[Axes] = None,
    scale: Optional[float] = None,
    title: Optional[str] = None,
    alpha: float = 0.8,
) -> Axes:
    """A (mel band, time) map laid over the log-mel spectrogram it belongs to (CLAP):
    the spectrogram in grey, mel bins from low (bottom) to high, frames left to right; the
    map's colour over it with the opacity of :func:`overlay_alpha`, each cell covering its
    share of the bins and frames.

    Args:
        input_features: one clip's features ``(frames, mel_bins)`` (or ``(1, frames,
            mel_bins)``, the feature extractor's row; a fused clip's first channel).
        cell_map: ``(bands, time cells)``, e.g.
            :func:`captum_bilinear.selection.spectrogram_cells` of a caption span's map.
        ax: the axes to draw on (default: a new figure).
        scale: the colour limit ``+-scale`` (default: the map's own largest magnitude).
        title: the axes title.
        alpha: opacity of the map's colour at ``+-scale``.

    Returns:
        The axes; ``ax.images[-1]`` is the map (divided by ``scale``, limits ``(-1, 1)``).

    Example:
        >>> ax = spectrogram_heatmap(torch.zeros(100, 16), torch.tensor([[1.0, 0.0], [0.0, -0.5]]))
        >>> ax.images[-1].get_array().shape, ax.images[-1].get_clim()
        ((16, 100), (-1.0, 1.0))
    """
    features = torch.as_tensor(_numpy(input_features), dtype=torch.float64)
    if features.dim() == 3:  # (channels, frames, mel_bins): the clip's (first) channel
        features = features[0]
    if features.dim() != 2:
        raise ValueError(f"input_features: expected one clip's (frames, mel_bins), got {tuple(features.shape)}")
    values = torch.as_tensor(_numpy(cell_map), dtype=torch.float64)
    if values.dim() != 2:
        raise ValueError(f"cell_map: expected (bands, time cells), got {tuple(values.shape)}")
    frames, bins = features.shape
    pixels = upsample_map(values, (bins, frames)).numpy()  # rows: bands, low first
    scale = common_scale(pixels) if scale is None else float(scale)
    scaled = np.clip(pixels / scale, -1, 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 2.5))
    ax.imshow(features.T.numpy(), cmap="gray", origin="lower", aspect="auto", interpolation="nearest")
    ax.imshow(scaled, cmap=CMAP, vmin=-1.0, vmax=1.0, alpha=overlay_alpha(scaled, alpha), origin="lower",
              aspect="auto", interpolation="nearest")
    ax.set_xlabel("frame")
    ax.set_ylabel("mel bin")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


# The interactive page (HTML) lives in its own module; importable from here (explicit re-exports).
from captum_bilinear.page import InteractionExplorer as InteractionExplorer  # noqa: E402
from captum_bilinear.page import interaction_explorer as interaction_explorer  # noqa: E402
