"""Conditional insertion and deletion curves (CID, CII, CTD, CTI).

One side of the pair stays fixed while items of the other side are removed (deletion)
or inserted (insertion) in the order of an attribution map, and the similarity is
recorded after every step:

* CID / CII: image patches in the order of a caption span's image map
  (:func:`~captum_bilinear.metrics.span_image_map`), caption fixed;
* CTD / CTI: caption tokens in the order of a box's caption map
  (:func:`~captum_bilinear.metrics.box_token_map`), image fixed.

The metric only sees *which items are kept*; what removing an item means (baseline
pixels, a pad token) lives in ``score_fn``, e.g.
:class:`~captum_bilinear.metrics.PatchMaskingScore` or
:class:`~captum_bilinear.metrics.TokenMaskingScore`.
"""

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from captum_bilinear._utils.checks import as_tensor, call_batched, check_choice, check_int

ScoreFn = Callable[[Tensor], Tensor]
MODES = ("deletion", "insertion")
NORMALIZATIONS = ("none", "full", "range")


@dataclass(frozen=True)
class CurveResult:
    """An insertion or deletion curve.

    Attributes:
        fractions: ``(n_steps + 1,)`` float64, the share of items removed (deletion) or
            inserted (insertion) at each point, from 0 to 1.
        scores: ``(n_steps + 1,)`` float64, the (normalized, see ``normalize``) score at
            each point.
        auc: trapezoidal area under ``scores`` over ``fractions``.
        mode: ``"deletion"`` or ``"insertion"``.
    """

    fractions: Tensor
    scores: Tensor
    auc: float
    mode: str


def _order_scores(order: Tensor) -> Tensor:
    tensor = as_tensor(order, "order")
    if tensor.dim() == 2:
        tensor = tensor.flatten()  # a (grid_h, grid_w) map, row-major like the patches
    if tensor.dim() != 1 or tensor.numel() == 0:
        raise ValueError(
            f"order: expected scores of shape (n_items,) or a (grid_h, grid_w) map, got {tuple(tensor.shape)}"
        )
    return tensor


def curve_masks(order: Tensor, n_steps: Optional[int] = None, mode: str = "deletion") -> Tuple[Tensor, Tensor]:
    """The keep masks of an insertion or deletion curve.

    Items are ranked by ``order``, highest first (ties by index). At step ``k`` the
    first ``⌊k · n_items / n_steps⌋`` ranked items are removed (deletion: all others are
    kept) or are the only ones kept (insertion).

    Args:
        order: ``(n_items,)`` scores, or a ``(grid_h, grid_w)`` map (flattened row-major).
        n_steps: number of steps, ``1 <= n_steps <= n_items``; ``None``: one item per step.
        mode: ``"deletion"`` or ``"insertion"``.

    Returns:
        ``(fractions, keep_mask)``: float64 ``(n_steps + 1,)`` and bool
        ``(n_steps + 1, n_items)``.

    Example:
        >>> fractions, keep = curve_masks(torch.tensor([0.1, 0.9, 0.5]), mode="deletion")
        >>> fractions
        tensor([0.0000, 0.3333, 0.6667, 1.0000], dtype=torch.float64)
        >>> keep.int()
        tensor([[1, 1, 1],
                [1, 0, 1],
                [1, 0, 0],
                [0, 0, 0]], dtype=torch.int32)
    """
    scores = _order_scores(order)
    check_choice(mode, "mode", MODES)
    n_items = scores.numel()
    n_steps = n_items if n_steps is None else check_int(n_steps, "n_steps", minimum=1)
    if n_steps > n_items:
        raise ValueError(f"n_steps: {n_steps} exceeds the {n_items} items of order")
    ranking = torch.sort(scores, descending=True, stable=True).indices.cpu()
    counts = torch.arange(n_steps + 1) * n_items // n_steps
    rank_of_item = torch.empty(n_items, dtype=torch.long)
    rank_of_item[ranking] = torch.arange(n_items)
    selected = rank_of_item[None, :] < counts[:, None]  # the first `count` ranked items
    keep = ~selected if mode == "deletion" else selected
    return counts.to(torch.float64) / n_items, keep


def _normalize(scores: Tensor, mode: str, normalize: str) -> Tensor:
    if normalize == "none":
        return scores
    full, empty = (scores[0], scores[-1]) if mode == "deletion" else (scores[-1], scores[0])
    if normalize == "full":
        return scores / full if full != 0 else torch.full_like(scores, float("nan"))
    return (scores - empty) / (full - empty) if full != empty else torch.full_like(scores, float("nan"))


def _curve(
    order: Tensor, score_fn: ScoreFn, n_steps: Optional[int], normalize: str, batch_size: Optional[int], mode: str
) -> CurveResult:
    check_choice(normalize, "normalize", NORMALIZATIONS)
    fractions, keep = curve_masks(order, n_steps, mode)
    if isinstance(order, Tensor):
        keep = keep.to(order.device)
    scores = _normalize(call_batched(score_fn, keep, batch_size, "score_fn"), mode, normalize)
    return CurveResult(fractions, scores, float(torch.trapezoid(scores, fractions)), mode)


def deletion_curve(
    order: Tensor,
    score_fn: ScoreFn,
    n_steps: Optional[int] = None,
    normalize: str = "none",
    batch_size: Optional[int] = None,
) -> CurveResult:
    """Conditional deletion (CID for patches, CTD for tokens): remove items in the order
    of ``order``, highest first, and record ``score_fn``. Lower AUC = better ordering.

    Args:
        order: ``(n_items,)`` scores (or a ``(grid_h, grid_w)`` map, flattened row-major),
            e.g. a span's image map; only the ranking matters (ties by index).
        score_fn: ``score_fn(keep_mask) -> scores``: ``keep_mask`` is bool
            ``(m, n_items)`` (``True`` = item present), the result ``(m,)``. All curve
            points come in one call unless ``batch_size`` is set.
        n_steps: curve steps (``n_steps + 1`` points, ``⌊k·n_items/n_steps⌋`` items
            removed at step ``k``); ``None``: one item per step.
        normalize: how ``scores`` and the AUC are scaled: ``"none"`` (default, the raw
            similarity), ``"full"`` (divided by the score with every item present) or
            ``"range"`` (``(s - s_empty) / (s_full - s_empty)``: the curve runs from 1
            to 0). A zero denominator gives NaN.
        batch_size: most keep-mask rows per ``score_fn`` call.

    Returns:
        :class:`CurveResult`; ``auc`` is the trapezoid over the removed fraction in [0, 1].

    Example:
        >>> # a toy score that adds up the values of the kept items
        >>> values = torch.tensor([3.0, 1.0, 2.0])
        >>> result = deletion_curve(values, lambda keep: keep.double() @ values.double())
        >>> result.scores
        tensor([6., 3., 1., 0.], dtype=torch.float64)
        >>> round(result.auc, 4)
        2.3333
    """
    return _curve(order, score_fn, n_steps, normalize, batch_size, "deletion")


def insertion_curve(
    order: Tensor,
    score_fn: ScoreFn,
    n_steps: Optional[int] = None,
    normalize: str = "none",
    batch_size: Optional[int] = None,
) -> CurveResult:
    """Conditional insertion (CII for patches, CTI for tokens): start from no items and
    insert them in the order of ``order``, highest first. Higher AUC = better ordering.

    Arguments as in :func:`deletion_curve`; ``fractions`` is the inserted share.

    Example:
        >>> values = torch.tensor([3.0, 1.0, 2.0])
        >>> result = insertion_curve(values, lambda keep: keep.double() @ values.double())
        >>> result.scores
        tensor([0., 3., 5., 6.], dtype=torch.float64)
        >>> round(result.auc, 4)
        3.6667
    """
    return _curve(order, score_fn, n_steps, normalize, batch_size, "insertion")
