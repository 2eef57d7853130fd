"""Object discrimination and hard negatives (exCLIP, Moeller et al. 2025, §4.3).

* Object discrimination: in a scene with several objects, each named by a caption
  span, the span of object ``i`` should interact positively with its own box and
  negatively with the boxes of the other objects.
* Hard negatives: swapping an object's word for another lowers the similarity and the
  span-box attribution.

Span-box attributions are :func:`~captum_bilinear.metrics.span_box_attribution`: the
span's interactions with the patches, each patch weighted by its share inside the box.
"""

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import torch
from torch import Tensor

from captum_bilinear._utils.checks import as_tensor, check_real, check_span
from captum_bilinear.selection import box_token_map, span_box_attribution


def _single(interactions: Any, name: str) -> Tensor:
    tensor = as_tensor(interactions, name)
    if tensor.dim() == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 2:
        raise ValueError(
            f"{name}: expected one example, shape (positions_a, positions_b) or (1, positions_a, positions_b), "
            f"got {tuple(tensor.shape)}"
        )
    return tensor


def _fraction(values: Tensor) -> float:
    return float(values.to(torch.float64).mean()) if values.numel() else float("nan")


@dataclass(frozen=True)
class ObjectDiscriminationResult:
    """Span-box attributions of one scene.

    Attributes:
        values: float64 ``(n_objects, n_objects)``; ``values[i, j]`` = span ``i`` -> box ``j``.
        own_positive: share of objects with ``values[i, i] > 0``.
        cross_negative: share of pairs ``i != j`` with ``values[i, j] < 0``
            (``nan`` for a single object).
        own_above_cross: share of objects whose own value exceeds every cross value
            of their span, ``values[i, i] > max_{j != i} values[i, j]`` (``nan`` for a
            single object).
    """

    values: Tensor
    own_positive: float
    cross_negative: float
    own_above_cross: float

    @property
    def own(self) -> Tensor:
        """``(n_objects,)``: the diagonal of ``values``."""
        return torch.diagonal(self.values)

    @property
    def cross(self) -> Tensor:
        """The off-diagonal values, row by row: ``(n_objects * (n_objects - 1),)``."""
        n = self.values.shape[0]
        return self.values[~torch.eye(n, dtype=torch.bool)]


def object_discrimination(
    interactions: Tensor,
    spans: Sequence[Tuple[int, int]],
    boxes: Sequence[Any],
    image_size: Tuple[int, int],
    grid_size: Optional[Tuple[int, int]] = None,
    has_cls: bool = True,
) -> ObjectDiscriminationResult:
    """Own-box vs. cross-box attributions of the objects of one scene.

    Args:
        interactions: one example's ``A``, ``(positions_a, positions_b)`` or ``(1, ...)``.
        spans: the objects' caption spans ``(start, stop)``.
        boxes: the objects' boxes ``(x0, y0, x1, y1)`` in pixels, same order as ``spans``.
        image_size: ``(height, width)`` of the image the grid covers.
        grid_size: ``(grid_h, grid_w)``; ``None`` for a square grid.
        has_cls: whether image position 0 is a CLS token.

    Returns:
        :class:`ObjectDiscriminationResult`.

    Example:
        >>> A = torch.zeros(4, 5)        # tokens x (CLS + 2x2 patches), 16x16 image
        >>> A[1, 1], A[1, 4] = 2.0, -1.0  # "cat" (token 1): + top-left, - bottom-right
        >>> A[2, 4], A[2, 1] = 1.0, -0.5  # "dog" (token 2): + bottom-right, - top-left
        >>> result = object_discrimination(A, [(1, 2), (2, 3)],
        ...                                [(0, 0, 8, 8), (8, 8, 16, 16)], image_size=(16, 16))
        >>> result.values
        tensor([[ 2.0000, -1.0000],
                [-0.5000,  1.0000]], dtype=torch.float64)
        >>> result.own_positive, result.cross_negative, result.own_above_cross
        (1.0, 1.0, 1.0)
    """
    tensor = _single(interactions, "interactions").to(torch.float64)
    if isinstance(spans, (str, bytes)) or not isinstance(spans, Sequence):
        raise TypeError(f"spans: expected a sequence of (start, stop) pairs, got {type(spans).__name__}")
    if isinstance(boxes, (str, bytes)) or not isinstance(boxes, (Sequence, Tensor)):
        raise TypeError(f"boxes: expected a sequence of (x0, y0, x1, y1), got {type(boxes).__name__}")
    if len(spans) == 0:
        raise ValueError("spans: expected at least one object")
    if len(spans) != len(boxes):
        raise ValueError(f"spans, boxes: expected one box per span, got {len(spans)} spans and {len(boxes)} boxes")
    n = len(spans)
    spans = [check_span(span, tensor.shape[0], f"spans[{i}]") for i, span in enumerate(spans)]
    values = torch.empty(n, n, dtype=torch.float64)
    for j, box in enumerate(boxes):
        token_map = box_token_map(tensor, box, image_size, grid_size, has_cls).cpu()
        for i, (start, stop) in enumerate(spans):
            values[i, j] = token_map[start:stop].sum()
    own = torch.diagonal(values)
    off = ~torch.eye(n, dtype=torch.bool)
    if n > 1:
        row_max = values.masked_fill(~off, -math.inf).max(1).values
        own_above = _fraction(own > row_max)
    else:
        own_above = float("nan")
    return ObjectDiscriminationResult(
        values=values,
        own_positive=_fraction(own > 0),
        cross_negative=_fraction(values[off] < 0),
        own_above_cross=own_above,
    )


@dataclass(frozen=True)
class HardNegativeResult:
    """Original caption vs. a caption with one object word swapped.

    Attributes:
        delta_score: ``δ_S = score_swapped - score``; negative when the swap lowers
            the similarity.
        delta_attribution: ``δ_A = attribution_swapped - attribution``; negative when
            the swap lowers the span-box attribution.
        score, score_swapped: the two similarity scores.
        attribution, attribution_swapped: the two span-box attributions.
    """

    delta_score: float
    delta_attribution: float
    score: float
    score_swapped: float
    attribution: float
    attribution_swapped: float


def hard_negative(
    interactions: Tensor,
    interactions_swapped: Optional[Tensor],
    span: Tuple[int, int],
    box: Any,
    image_size: Tuple[int, int],
    span_swapped: Optional[Tuple[int, int]] = None,
    score: Optional[float] = None,
    score_swapped: Optional[float] = None,
    grid_size: Optional[Tuple[int, int]] = None,
    has_cls: bool = True,
    attribution_swapped: Optional[float] = None,
) -> HardNegativeResult:
    """Change of the similarity (``δ_S``) and of the object's span-box attribution
    (``δ_A``) when the object word is swapped.

    Args:
        interactions: ``A`` of the original caption and the image (one example).
        interactions_swapped: ``A`` of the swapped caption and the same image.
        span: the object's span in the original caption.
        box: the object's box ``(x0, y0, x1, y1)``.
        image_size: ``(height, width)`` of the image the grid covers.
        span_swapped: the replacement's span in the swapped caption (default ``span``;
            set it when the new word has a different number of tokens).
        score, score_swapped: the model's similarities; default ``Σ A`` of each, which
            is the similarity when the references' terms vanish (completeness).
        grid_size: ``(grid_h, grid_w)``; ``None`` for a square grid.
        has_cls: whether image position 0 is a CLS token.
        attribution_swapped: the swapped span's attribution with the box, when it was
            computed without the whole matrix (e.g. BII with the span and the box as
            groups); ``interactions_swapped`` is then None and ``score_swapped`` required.

    Returns:
        :class:`HardNegativeResult` (``delta_score``, ``delta_attribution``).

    Example:
        >>> A = torch.zeros(3, 5); A[1, 1] = 2.0        # "cat" -> top-left patch
        >>> B = torch.zeros(3, 5); B[1, 1] = 0.5        # "dog" -> top-left patch, weaker
        >>> result = hard_negative(A, B, (1, 2), (0, 0, 8, 8), image_size=(16, 16),
        ...                        score=0.30, score_swapped=0.25)
        >>> round(result.delta_score, 6), result.delta_attribution
        (-0.05, -1.5)
    """
    original = _single(interactions, "interactions").to(torch.float64)
    span = check_span(span, original.shape[0], "span")
    attribution = float(span_box_attribution(original, span, box, image_size, grid_size, has_cls))
    score = float(original.sum()) if score is None else check_real(score, "score")
    if attribution_swapped is not None:
        if interactions_swapped is not None or score_swapped is None:
            raise ValueError("attribution_swapped: give it with interactions_swapped=None and score_swapped")
        attribution_swapped = check_real(attribution_swapped, "attribution_swapped")
        score_swapped = check_real(score_swapped, "score_swapped")
    else:
        swapped = _single(interactions_swapped, "interactions_swapped").to(torch.float64)
        if original.shape[-1] != swapped.shape[-1]:
            raise ValueError(
                f"interactions_swapped: expected {original.shape[-1]} image positions like interactions "
                f"(same image), got {swapped.shape[-1]}"
            )
        span_swapped = check_span(span if span_swapped is None else span_swapped, swapped.shape[0], "span_swapped")
        attribution_swapped = float(span_box_attribution(swapped, span_swapped, box, image_size, grid_size, has_cls))
        score_swapped = float(swapped.sum()) if score_swapped is None else check_real(score_swapped, "score_swapped")
    return HardNegativeResult(
        delta_score=score_swapped - score,
        delta_attribution=attribution_swapped - attribution,
        score=score,
        score_swapped=score_swapped,
        attribution=attribution,
        attribution_swapped=attribution_swapped,
    )
