"""Which positions of a layer are players of the perturbation methods.

A selection per side is None (every position), a sequence of position indices (negative
ones count from the end), a 1-D integer Tensor of indices or a 1-D bool mask, the same for
every example of a batch. Positions that carry no input (padding, per the dual encoder's
position mask) are never players, whatever the selection says.
"""

import numbers
from typing import Any, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

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
