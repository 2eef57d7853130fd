"""The interactive page of one pair: every token x patch interaction in one self-contained
HTML file, explored in a plain browser with no network.

The page holds the full matrix of every method (float32, base64), the image as a data URI
and the explorer's script and style inline (``captum_bilinear/page_assets``); a
Content-Security-Policy forbids it to load anything. On it: the image with the map of the
hovered / clicked token or selected span drawn over it, the caption as tokens, a box
dragged on the image colouring the caption, a switch between the methods (each on its own
colour scale, its unit named) and the first-order map, an opacity slider and the value
under the pointer. Special positions are off the colour scale, as in the figure of
:func:`~captum_bilinear.visualization.plot_interaction_figure`, whose colour map the page
uses.

In the browser every explorer registers as ``window.captumBilinearExplorers[id]`` and the
first one of a page as ``window.captumBilinear``::

    {id, methods, tokens, grid: [rows, cols], imageSize: [height, width] as shown,
     spanMap(method, start, stop) -> rows * cols numbers   (as selection.span_image_map),
     boxMap(method, x0, y0, x1, y1) -> one number per token (as selection.box_token_map,
                                                            box in the shown image's pixels),
     show({method, span, box}), state()}

and each caption token is an element with ``data-token="<row of A>"``.
"""

import base64
import html
import io
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from captum_bilinear.selection import patch_positions
from captum_bilinear.terms import InteractionTerms

#: The explorer's script and style, shipped as package data.
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page_assets")
#: The name of the first-order view in the page (``show({method: "first-order"})``).
FIRST_ORDER_VIEW = "first-order"
#: The image is shown at an integer multiple of the model's pixels, about this wide.
DISPLAY_WIDTH = 448
#: The opacity of a map at the end of its colour scale, at first (a slider changes it).
OPACITY = 0.8
#: Patches beyond this share of the colour scale are outlined (as the figure's contours).
CONTOUR = 0.5
#: Share (percent) of a method's values left saturated by its colour scale (as the figure).
OUTLIER_PERC = 2.0
#: Nothing is fetched: the page's Content-Security-Policy.
CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                           "script-src 'unsafe-inline'")

TermsLike = Union[InteractionTerms, Tensor, Sequence[InteractionTerms]]


def _asset(name: str) -> str:
    with open(os.path.join(ASSETS, name), encoding="utf-8") as handle:
        return handle.read()


def _float32_base64(values: Any) -> str:
    array = np.ascontiguousarray(np.asarray(values, dtype="<f4"))
    return base64.b64encode(array.tobytes()).decode("ascii")


def _image_data_uri(picture: np.ndarray) -> str:
    """PNG (lossless: drawings stay exact), or JPEG where a photo's PNG would be far larger."""
    from PIL import Image

    image = Image.fromarray(picture)
    png, jpeg = io.BytesIO(), io.BytesIO()
    image.save(png, format="PNG", optimize=True)
    image.save(jpeg, format="JPEG", quality=92)
    if png.tell() <= 1.5 * jpeg.tell():
        return "data:image/png;base64," + base64.b64encode(png.getvalue()).decode("ascii")
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.getvalue()).decode("ascii")


def _colour_table(steps: int = 256) -> List[List[int]]:
    """The figure's colour map, sampled: the page draws the same colours."""
    from matplotlib import pyplot as plt

    from captum_bilinear.visualization import CMAP

    colours = plt.get_cmap(CMAP)(np.linspace(0.0, 1.0, steps))[:, :3]
    return np.rint(colours * 255).astype(int).tolist()


def _units_of(method: str, units: Union[None, str, Mapping[str, str]]) -> str:
    if isinstance(units, str):
        return units
    if isinstance(units, Mapping) and method in units:
        return str(units[method])
    from captum_bilinear.registry import method_spec

    try:
        return method_spec(method).units
    except ValueError:
        return "interaction"


def _as_terms_list(terms: TermsLike, method: Optional[str]) -> List[InteractionTerms]:
    if isinstance(terms, Tensor):
        cross = terms.detach()
        cross = cross[None] if cross.dim() == 2 else cross
        if cross.dim() != 3:
            raise ValueError(f"terms: expected a (positions_a, positions_b) tensor, got shape {tuple(terms.shape)}")
        zeros = cross.new_zeros
        return [InteractionTerms(zeros(cross.shape[0]), zeros(cross.shape[:2]), zeros(cross.shape[0], cross.shape[2]),
                                 cross, method=method or "interactions", has_intercept=False, has_first_order=False)]
    if isinstance(terms, InteractionTerms):
        return [terms]
    if isinstance(terms, (list, tuple)) and terms and all(isinstance(t, InteractionTerms) for t in terms):
        return list(terms)
    raise TypeError("terms: expected InteractionTerms, a sequence of InteractionTerms of one pair (one per method) "
                    f"or a (positions_a, positions_b) tensor, got {type(terms).__name__}")


def _display_scale(height: int, width: int) -> int:
    return max(1, int(round(DISPLAY_WIDTH / max(height, width))))


@dataclass
class InteractionExplorer:
    """One pair's interactive page (see :func:`interaction_explorer`): ``html()`` is the
    standalone page, ``fragment()`` an embeddable explorer (notebooks show it inline)."""

    data: Dict[str, Any]  #: what the page holds (JSON; matrices as base64 float32)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    def fragment(self) -> str:
        """The explorer as an HTML fragment (its element, data, style and script), to embed
        in a notebook or a documentation page; two explorers can share a page.

        Example:
            >>> explorer = interaction_explorer(torch.ones(3, 5), np.zeros((8, 8, 3), np.uint8), ["a", "b", "c"])
            >>> explorer.fragment().count(f'id="{explorer.id}"')
            1
        """
        payload = json.dumps(self.data, separators=(",", ":"), allow_nan=False)
        # cannot end the script element, and stays JSON ("\\u003c" is "<"; "<\\!" is no JSON escape)
        payload = payload.replace("</", "<\\/").replace("<!--", "\\u003c!--")
        identifier = html.escape(self.id, quote=True)
        return (
            f'<div id="{identifier}" class="cb-explorer">The interaction explorer needs JavaScript.</div>\n'
            f"<style>{_asset('explorer.css')}</style>\n"
            f'<script type="application/json" id="{identifier}-data">{payload}</script>\n'
            f"<script>{_asset('explorer.js')}</script>\n"
            f"<script>window.CaptumBilinearExplorer.mount({json.dumps(self.id)});</script>\n"
        )

    def html(self) -> str:
        """The standalone page: nothing in it refers to a file or address outside it.

        Example:
            >>> page = interaction_explorer(torch.ones(3, 5), np.zeros((8, 8, 3), np.uint8), ["a", "b", "c"]).html()
            >>> page.startswith("<!DOCTYPE html>"), "https://" in page
            (True, False)
        """
        title = html.escape(self.data.get("title") or "captum-bilinear interactions")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{title}</title>\n</head>\n<body>\n{self.fragment()}</body>\n</html>\n"
        )

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes :meth:`html` to ``path`` (UTF-8)."""
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.html())

    def _repr_html_(self) -> str:
        return self.fragment()


def interaction_explorer(
    terms: TermsLike,
    image: Any = None,
    tokens: Optional[Sequence[str]] = None,
    *,
    index: int = 0,
    grid_size: Optional[Tuple[int, int]] = None,
    has_cls: Optional[bool] = None,
    first_order_map: Optional[Any] = None,
    first_order_title: str = "first-order (Captum)",
    first_order_units: str = "similarity",
    spans: Optional[Sequence[Tuple[int, int]]] = None,
    box: Optional[Sequence[float]] = None,
    title: Optional[str] = None,
    units: Union[None, str, Mapping[str, str]] = None,
    special: Optional[Sequence[int]] = None,
    method: Optional[str] = None,
    explorer_id: Optional[str] = None,
) -> InteractionExplorer:
    """The interactive page of one pair: its full token x patch interactions, of one or
    several methods, over its image.

    Args:
        terms: :class:`~captum_bilinear.InteractionTerms` (``cross`` is shown), a list of
            them for the same pair (one per method, named by their ``method``), or the
            ``(positions_a, positions_b)`` tensor ``attribute`` returns for one pair.
        image: the image as the model saw it (PIL, uint8 ``(H, W, 3)``, float ``(3, H, W)``
            in ``[0, 1]``; default: the terms' ``image``).
        tokens: the caption's token labels (default: the terms' ``tokens``).
        index: the example of a batch.
        grid_size, has_cls: side b's patch grid and whether position 0 is CLS (default:
            the terms' ``grid``, else a square grid with or without CLS).
        first_order_map: an optional ``(rows, cols)`` first-order map of the same pair,
            a view of its own (``first_order_title``, ``first_order_units``).
        spans: caption spans ``(start, stop)`` that also set each method's colour scale;
            the first is shown at first.
        box: a box ``(x0, y0, x1, y1)`` in the model image's pixels shown at first.
        title: a line above the explorer.
        units: what the values are in: one string, or by method name (default: the
            registry's units of each method, else ``"interaction"``).
        special: caption positions off the colour scale (default: the special tokens).
        method: the name of a tensor ``terms``.
        explorer_id: the element id (default: a fresh random one).

    Returns:
        An :class:`InteractionExplorer`: ``.save("page.html")``, ``.html()``, and shown
        inline by notebooks.

    Raises:
        ValueError: naming the argument whose shape does not fit the others.

    Example:
        >>> A = torch.zeros(4, 5); A[1, 4] = 1.0   # [BOS] red dot [EOS] x (CLS + 2 x 2 patches)
        >>> explorer = interaction_explorer(A, np.zeros((16, 16, 3), np.uint8), ["[BOS]", "red", "dot", "[EOS]"])
        >>> explorer.data["grid"], explorer.data["hasCls"], explorer.data["display"], explorer.data["special"]
        ([2, 2], True, [448, 448], [0, 3])
    """
    from captum_bilinear.visualization import (
        BOX_COLOUR, CONTOUR_COLOURS, MUTED, common_scale, image_array, special_positions,
    )

    runs = _as_terms_list(terms, method)
    names = [run.method or f"method {number + 1}" for number, run in enumerate(runs)]
    if len(set(names)) != len(names):
        raise ValueError(f"terms: two results have the same method name ({names}); give each its own "
                         "(dataclasses.replace(terms, method=...))")
    shape = tuple(runs[0].cross.shape)
    for run in runs:
        if tuple(run.cross.shape) != shape:
            raise ValueError(f"terms: every method must explain the same pair; got shapes {tuple(runs[0].cross.shape)} "
                             f"and {tuple(run.cross.shape)}")
    if not -shape[0] <= index < shape[0]:
        raise IndexError(f"index: {index} is out of range for a batch of {shape[0]}")
    positions_a, positions_b = shape[1], shape[2]
    if tokens is None:
        labels = next((run.tokens for run in runs if run.tokens is not None), None)
        if labels is None:
            raise ValueError("tokens: the terms carry no token labels; pass tokens=[...] (one per caption position)")
        tokens = labels[index]
    tokens = [str(token) for token in tokens]
    if len(tokens) != positions_a:
        raise ValueError(f"tokens: expected {positions_a} labels (one per caption position), got {len(tokens)}")
    if image is None:
        pictured = next((run.image for run in runs if run.image is not None), None)
        if pictured is None:
            raise ValueError("image: the terms carry no image; pass the image as the model saw it")
        image = pictured[index].cpu().numpy()
    picture = np.rint(image_array(image) * 255).astype(np.uint8)
    if grid_size is None:
        grid_size = next((run.grid for run in runs if run.grid is not None), None)
    if has_cls is None:  # a CLS position is what a grid leaves over
        has_cls = (positions_b == grid_size[0] * grid_size[1] + 1 if grid_size is not None
                   else not _is_square(positions_b))
    offset, grid = patch_positions(positions_b, grid_size, has_cls)
    height, width = picture.shape[:2]
    scale = _display_scale(height, width)
    display = (height * scale, width * scale)
    neutral = special_positions(tokens) if special is None else [int(position) for position in special]
    span_list = [tuple(int(v) for v in span) for span in (spans or [])]

    methods = []
    for name, run in zip(names, runs):
        matrix = run.cross[index].detach().to("cpu", torch.float64)
        rows = [s for s in range(positions_a) if s not in set(neutral)] or list(range(positions_a))
        maps = [matrix[rows, offset:]] + [matrix[start:stop, offset:].sum(0) for start, stop in span_list]
        methods.append({"name": name, "units": _units_of(name, units),
                        "scale": common_scale(*maps, outlier_perc=OUTLIER_PERC),
                        "data": _float32_base64(matrix.numpy())})
    first_order = None
    if first_order_map is not None:
        values = torch.as_tensor(np.asarray(first_order_map, dtype=np.float64)).reshape(-1)
        if values.numel() != grid[0] * grid[1]:
            raise ValueError(f"first_order_map: expected {grid[0]} x {grid[1]} values (the patch grid), got "
                             f"{values.numel()}")
        first_order = {"title": first_order_title, "units": first_order_units,
                       "scale": common_scale(values, outlier_perc=OUTLIER_PERC), "data": _float32_base64(values.numpy())}
    initial: Dict[str, Any] = {}
    if span_list:
        initial["span"] = list(span_list[0])
    if box is not None:
        initial["box"] = [float(v) * scale for v in box]
    from matplotlib.colors import to_hex

    data = {
        "id": explorer_id or f"cb-{uuid.uuid4().hex[:12]}",
        "title": title, "tokens": tokens, "special": neutral, "grid": list(grid), "hasCls": bool(offset),
        "display": list(display), "modelImageSize": [height, width], "image": _image_data_uri(picture),
        "methods": methods, "firstOrder": first_order, "colours": _colour_table(), "opacity": OPACITY,
        "boxColour": to_hex(BOX_COLOUR), "contour": CONTOUR, "contourColours": [to_hex(c) for c in CONTOUR_COLOURS],
        "muted": MUTED,
        "spans": [list(span) for span in span_list], "initial": initial,
    }
    return InteractionExplorer(data)


def _is_square(count: int) -> bool:
    side = int(round(count ** 0.5))
    return side * side == count
