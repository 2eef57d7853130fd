"""Groups of layer positions as players: Captum's ``feature_mask``, one per side.

A side's mask is None (every position its own player) or an integer Tensor of shape
``(batch, positions)`` or ``(positions,)`` giving each position of that side's layer a
group id ``0 .. G-1``; ``-1`` leaves a position out. Results are per group: the sum of
the per-position values over each group's positions. Internally a group is a row of
*weights* over positions (``(G, positions)``, 1 where a position belongs to it); a float
Tensor of shape ``(G, positions)`` or ``(batch, G, positions)`` gives such weights
directly (a box's patches weighted by their share inside it, say).
"""

from typing import Any, NamedTuple, Optional, Tuple

import torch
from torch import Tensor


#: ``feature_mask``: None, or ``(mask_a, mask_b)`` with each None or a Tensor (see above).
FeatureMask = Optional[Tuple[Optional[Tensor], Optional[Tensor]]]


class SideMask(NamedTuple):
    """One side's checked mask: integer ids ``(batch or 1, positions)`` or float weights
    ``(batch or 1, G, positions)``, and the number of groups ``G``."""

    values: Tensor
    groups: int
    is_weights: bool

    def weights(self, index: int, positions: int, name: str) -> Tensor:
        """``(G, positions)`` float64 weights of example ``index`` for a layer of ``positions``."""
        values = self.values[index if self.values.shape[0] > 1 else 0]
        if values.shape[-1] != positions:
            raise ValueError(f"{name}: a mask of {values.shape[-1]} positions for a layer with {positions} "
                             "positions; expected one entry per position of the layer")
        if self.is_weights:
            return values.to(torch.float64)
        ids = values.to(torch.long)
        weights = torch.zeros(self.groups, positions, dtype=torch.float64)
        inside = ids >= 0
        weights[ids[inside], torch.arange(positions)[inside]] = 1.0
        return weights


def _check_one(mask: Any, batch: Optional[int], name: str) -> Optional[SideMask]:
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name}: expected None or a Tensor of group ids per position, got {type(mask).__name__}")
    if mask.is_complex() or mask.dtype == torch.bool:
        raise TypeError(f"{name}: expected integer group ids (or float group weights), got {mask.dtype}")
    mask = mask.detach().cpu()
    if mask.is_floating_point():
        if mask.dim() not in (2, 3):
            raise ValueError(f"{name}: float group weights must have shape (groups, positions) or "
                             f"(batch, groups, positions), got {tuple(mask.shape)}")
        if not bool(torch.isfinite(mask).all()):
            raise ValueError(f"{name}: group weights must be finite")
        values = mask if mask.dim() == 3 else mask.unsqueeze(0)
        if batch is not None and values.shape[0] not in (1, batch):
            raise ValueError(f"{name}: weights for a batch of {values.shape[0]}, inputs of batch {batch}")
        if values.shape[1] < 1:
            raise ValueError(f"{name}: expected at least one group, got shape {tuple(mask.shape)}")
        return SideMask(values, values.shape[1], True)
    if mask.dim() not in (1, 2):
        raise ValueError(f"{name}: expected group ids of shape (positions,) or (batch, positions), "
                         f"got {tuple(mask.shape)}")
    values = mask if mask.dim() == 2 else mask.unsqueeze(0)
    if batch is not None and values.shape[0] not in (1, batch):
        raise ValueError(f"{name}: group ids for a batch of {values.shape[0]}, inputs of batch {batch}")
    if values.numel() == 0 or int(values.max()) < 0:
        raise ValueError(f"{name}: expected at least one position in a group (ids 0 .. G-1), got none")
    if int(values.min()) < -1:
        raise ValueError(f"{name}: group ids must be -1 (left out) or 0 .. G-1, got {int(values.min())}")
    if int(values.max()) >= values.shape[-1]:  # a group left empty; a huge id would allocate G x positions
        raise ValueError(f"{name}: group id {int(values.max())} for a mask of {values.shape[-1]} positions; expected "
                         "ids 0 .. G-1 with G at most the number of positions")
    return SideMask(values.to(torch.long), int(values.max()) + 1, False)


def check_feature_mask(feature_mask: Any, batch: Optional[int]) -> Tuple[Optional[SideMask], Optional[SideMask]]:
    """The checked ``(mask_a, mask_b)`` of a ``feature_mask`` argument, before any pass
    (``batch`` None: any batch size).

    Example:
        >>> mask_a, mask_b = check_feature_mask((torch.tensor([-1, 0, 0, 1]), None), batch=1)
        >>> mask_a.groups, mask_b
        (2, None)
        >>> mask_a.weights(0, 4, "feature_mask[0]")
        tensor([[0., 1., 1., 0.],
                [0., 0., 0., 1.]], dtype=torch.float64)
    """
    if feature_mask is None:
        return None, None
    if not isinstance(feature_mask, (tuple, list)) or len(feature_mask) != 2:
        raise TypeError("feature_mask: expected None or a pair (mask_a, mask_b), each None or group ids per "
                        f"position of that side's layer; got {type(feature_mask).__name__}")
    return (_check_one(feature_mask[0], batch, "feature_mask[0]"),
            _check_one(feature_mask[1], batch, "feature_mask[1]"))


def is_partition(weights: Optional[Tensor]) -> bool:
    """Whether every position belongs to exactly one group with weight 1 (None: each
    position its own group), so that sums over groups are sums over positions."""
    if weights is None:
        return True
    binary = bool(((weights == 0) | (weights == 1)).all())
    return binary and bool((weights.sum(0) == 1).all())


def complement(weights: Tensor) -> Optional[Tensor]:
    """``(positions,)``: what the groups leave of each position (``1 - sum of weights``),
    or None when nothing is left."""
    rest = 1.0 - weights.sum(0)
    return None if bool((rest == 0).all()) else rest


def grouped(values: Tensor, weights: Optional[Tensor], dim: int = -1) -> Tensor:
    """``values`` with its positions axis ``dim`` replaced by the groups (``weights @``)."""
    if weights is None:
        return values
    moved = values.movedim(dim, -1)
    return (moved @ weights.to(device=values.device, dtype=values.dtype).T).movedim(-1, dim)
