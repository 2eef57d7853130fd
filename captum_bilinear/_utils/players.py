"""Which positions of a layer are players of the perturbation methods.

A selection per side is None (every position), a sequence of position indices (negative
ones count from the end), a 1-D integer Tensor of indices or a 1-D bool mask, the same for
every example of a batch. Positions that carry no input (padding, per the dual encoder's
position mask) are never players, whatever the selection says.

Groups of positions as players (``feature_mask``, integer group ids per position): each
group is one player whose positions are masked together; ``-1`` positions are no player
(always present), and padding is never part of a player.
"""

import numbers
from typing import Any, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from captum_bilinear._utils.groups import SideMask, check_feature_mask

#: One side's players: None (every position), a sequence of position indices (negative
#: ones count from the end), or a 1-D integer Tensor of indices / bool Tensor mask.
PlayerSelection = Union[None, Sequence[int], Tensor]


def _check_selection(value: Any, name: str) -> Optional[Tensor]:
    """Type checks of one side's players (before any model pass)."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        if value.dim() != 1 or value.is_floating_point() or value.is_complex():
            raise TypeError(
                f"{name}: expected a 1-D integer Tensor of positions or a 1-D bool mask, got "
                f"{value.dtype} of shape {tuple(value.shape)}"
            )
        return value.detach().cpu()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected None, a sequence of position indices or a 1-D Tensor, got {type(value).__name__}")
    for index in value:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"{name}: expected int position indices, got {index!r}")
    return torch.tensor([int(index) for index in value], dtype=torch.long)


def check_players(players: Any) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """The checked ``(selection_a, selection_b)`` of a ``players`` argument.

    Example:
        >>> check_players(([1, 2], None))
        (tensor([1, 2]), None)
    """
    if players is None:
        return None, None
    if not isinstance(players, (tuple, list)) or len(players) != 2:
        raise TypeError(
            "players: expected None or a pair (indices_a, indices_b), each None (every position) or "
            f"the positions that are players, e.g. (range(1, 11), None); got {type(players).__name__}"
        )
    return _check_selection(players[0], "players[0]"), _check_selection(players[1], "players[1]")


def player_mask(selection: Optional[Tensor], positions: int, name: str, carries_input: Optional[Tensor] = None) -> Tensor:
    """The bool ``(positions,)`` player mask of a checked selection, without the positions
    that carry no input (``carries_input`` False: padding).

    Example:
        >>> player_mask(torch.tensor([0, -1]), 4, "players[0]")
        tensor([ True, False, False,  True])
        >>> player_mask(None, 4, "players[0]", carries_input=torch.tensor([True, True, True, False]))
        tensor([ True,  True,  True, False])
    """
    if selection is None:
        mask = torch.ones(positions, dtype=torch.bool)
    elif selection.dtype == torch.bool:
        if selection.numel() != positions:
            raise ValueError(f"{name}: a bool mask must have one entry per position ({positions}), got {selection.numel()}")
        mask = selection.clone()
    else:
        out_of_range = (selection < -positions) | (selection >= positions)
        if bool(out_of_range.any()):
            raise ValueError(
                f"{name}: position {int(selection[out_of_range][0])} is out of range for a layer with {positions} positions"
            )
        indices = selection % positions
        if indices.unique().numel() != indices.numel():
            raise ValueError(f"{name}: the positions {indices.tolist()} contain duplicates")
        mask = torch.zeros(positions, dtype=torch.bool)
        mask[indices] = True
    if carries_input is not None:
        if carries_input.numel() != positions:
            raise ValueError(f"{name}: the position mask has {carries_input.numel()} entries for a layer with "
                             f"{positions} positions")
        mask &= carries_input.reshape(-1).cpu().to(torch.bool)
    if not bool(mask.any()):
        raise ValueError(f"{name}: select at least one player position (padding is never a player)")
    return mask


def check_masking_groups(
    feature_mask: Any, players: Any, batch: Optional[int]
) -> Tuple[Optional[SideMask], Optional[SideMask]]:
    """The checked ``feature_mask`` of a masking method (before any model pass): integer
    group ids only (a group is masked as a whole, so float weights have no meaning), and
    not together with ``players`` (both say which positions are players).

    Example:
        >>> mask_a, mask_b = check_masking_groups((torch.tensor([-1, 0, 0, 1]), None), None, batch=1)
        >>> mask_a.groups, mask_b
        (2, None)
        >>> check_masking_groups((None, torch.ones(2, 5)), None, batch=1)
        Traceback (most recent call last):
        ...
        TypeError: feature_mask[1]: ...
    """
    if feature_mask is not None and players is not None:
        raise ValueError(
            "feature_mask: give players (positions as players) or feature_mask (groups of positions as players), "
            "not both; with feature_mask, id -1 leaves a position out of every player"
        )
    masks = check_feature_mask(feature_mask, batch)
    for which, mask in enumerate(masks):
        if mask is not None and mask.is_weights:
            raise TypeError(
                f"feature_mask[{which}]: a masking method masks each group's positions together (all present or all "
                "taking the reference's activation), which needs integer group ids per position (0 .. G-1, -1 left "
                f"out); float group weights ({mask.values.dtype}) cannot be masked"
            )
    return masks


def group_players(mask: SideMask, index: int, positions: int, name: str,
                  carries_input: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Example ``index``'s groups as masking players: bool ``(G, positions)``, the layer
    positions of each group without those that carry no input (padding is never part of
    a player), and bool ``(G,)``, the groups left with a position (the players; a group
    of padding only is none).

    Example:
        >>> mask, _ = check_feature_mask((torch.tensor([0, 0, 1, -1]), None), batch=1)
        >>> members, is_player = group_players(mask, 0, 4, "feature_mask[0]",
        ...                                    carries_input=torch.tensor([True, True, False, True]))
        >>> members.int().tolist(), is_player.tolist()
        ([[1, 1, 0, 0], [0, 0, 0, 0]], [True, False])
    """
    members = mask.weights(index, positions, name) != 0
    if carries_input is not None:
        if carries_input.numel() != positions:
            raise ValueError(f"{name}: the position mask has {carries_input.numel()} entries for a layer with "
                             f"{positions} positions")
        members &= carries_input.reshape(1, -1).cpu().to(torch.bool)
    is_player = members.any(1)
    if not bool(is_player.any()):
        raise ValueError(f"{name}: no group has a position that carries input in example {index} (padding is never "
                         "part of a player)")
    return members, is_player
