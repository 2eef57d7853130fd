"""Pointing game for a caption span and its object's box: accuracy (PGA) and energy (PGE)."""

from dataclasses import dataclass
from typing import Any, Tuple

import torch
from torch import Tensor

from captum_bilinear._utils.checks import as_tensor, check_box, check_int, check_pair
from captum_bilinear.selection import box_pixel_mask, upsample_map


@dataclass(frozen=True)
class PointingGameResult:
    """One span-box pair.

    Attributes:
        hit: PGA: whether the map's maximum lies in the box.
        energy: PGE: the share of the map's positive mass that lies in the box, in
            ``[0, 1]``; ``0.0`` when the map has no positive mass.
    """

    hit: bool
    energy: float


def pointing_game(
    image_map: Tensor,
    box: Any,
    image_size: Tuple[int, int],
    mode: str = "nearest",
    tolerance: int = 0,
) -> PointingGameResult:
    """Pointing-game accuracy (PGA) and energy (PGE) of a span's image map for its box.

    The patch map is upsampled to pixels (:func:`~captum_bilinear.metrics.upsample_map`)
    and both scores are computed on the pixels:

    * ``hit`` is ``True`` when some pixel of maximal value lies in the box (grown by
      ``tolerance`` pixels on each side). With ``mode="nearest"`` the maximum is a whole
      patch, so this reads "the top patch overlaps the box"; ties between patches count
      as a hit if any of them overlaps. A constant map (e.g. all zeros) points nowhere and
      scores ``False``.
    * ``energy`` is ``Σ_box max(m, 0) / Σ_image max(m, 0)``: negative attributions are
      ignored, and a map without positive mass scores ``0.0`` (it puts no positive
      evidence in the box).

    Args:
        image_map: ``(grid_h, grid_w)`` patch map, CLS already removed (e.g. from
            :func:`~captum_bilinear.metrics.span_image_map`).
        box: ``(x0, y0, x1, y1)`` in pixels, end exclusive.
        image_size: ``(height, width)`` of the image the grid covers.
        mode: ``"nearest"`` (default; each patch covers its pixels) or ``"bilinear"``.
        tolerance: pixels added on each side of the box for ``hit`` (not for ``energy``).

    Returns:
        :class:`PointingGameResult`.

    Example:
        >>> image_map = torch.tensor([[0.0, 3.0], [1.0, -2.0]])  # top-right is hottest
        >>> pointing_game(image_map, box=(8, 0, 16, 8), image_size=(16, 16))
        PointingGameResult(hit=True, energy=0.75)
    """
    tensor = as_tensor(image_map, "image_map")
    if tensor.dim() != 2:
        raise ValueError(f"image_map: expected shape (grid_h, grid_w), got {tuple(tensor.shape)}")
    size = check_pair(image_size, "image_size")
    tolerance = check_int(tolerance, "tolerance", minimum=0)
    x0, y0, x1, y1 = check_box(box, size)
    pixels = upsample_map(tensor.cpu(), size, mode).to(torch.float64)

    in_box = box_pixel_mask((x0, y0, x1, y1), size)
    if tolerance:
        height, width = size
        grown = (
            max(x0 - tolerance, 0),
            max(y0 - tolerance, 0),
            min(x1 + tolerance, width),
            min(y1 + tolerance, height),
        )
        near_box = box_pixel_mask(grown, size)
    else:
        near_box = in_box

    maximum = pixels.max()
    if bool((pixels == maximum).all()):
        hit = False
    else:
        hit = bool(((pixels == maximum) & near_box).any())

    positive = pixels.clamp(min=0)
    total = positive.sum()
    energy = float(positive[in_box].sum() / total) if total > 0 else 0.0
    return PointingGameResult(hit=hit, energy=energy)
