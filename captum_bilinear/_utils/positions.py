"""Views of a layer activation as ``(batch, positions, hidden)``.

Interactions are reported per *position* (a caption token, an image patch), with the
hidden dimensions summed. Transformer layers already have that layout; a pooled
``(batch, hidden)`` activation is one position; a convolutional ``(batch, channels,
height, width)`` map has one position per pixel of the map, channels as hidden.
"""

from typing import Tuple

import torch
from torch import Tensor


def as_positions(activation: Tensor) -> Tensor:
    """Returns ``activation`` as a ``(batch, positions, hidden)`` view."""
    if activation.dim() == 3:
        return activation
    if activation.dim() == 2:
        return activation.unsqueeze(1)
    if activation.dim() == 4:
        return activation.flatten(2).transpose(1, 2)
    raise ValueError(
        "layer: expected an activation of shape (batch, positions, hidden), "
        "(batch, hidden) or (batch, channels, height, width), got shape "
        f"{tuple(activation.shape)}"
    )


def from_positions(positions: Tensor, activation_shape: Tuple[int, ...]) -> Tensor:
    """Inverse of :func:`as_positions` for an activation of ``activation_shape``
    (the batch size of ``positions`` may differ from ``activation_shape[0]``)."""
    batch = positions.shape[0]
    if len(activation_shape) == 3:
        return positions
    if len(activation_shape) == 2:
        return positions.squeeze(1)
    if len(activation_shape) == 4:
        channels, height, width = activation_shape[1:]
        return positions.transpose(1, 2).reshape(batch, channels, height, width)
    raise ValueError(f"unsupported activation shape {activation_shape}")


def num_positions(activation: Tensor) -> int:
    return as_positions(activation).shape[1]


def sum_hidden(activation: Tensor) -> Tensor:
    """Sums the hidden dimensions: ``(batch, *activation shape) -> (batch, positions)``."""
    return as_positions(activation).sum(-1)


def one_position_directions(
    direction: Tensor, positions: Tensor
) -> Tensor:
    """Copies of ``direction`` (one example, shape ``(1, *activation)``), the ``i``-th
    restricted to position ``positions[i]`` and zero elsewhere."""
    view = as_positions(direction)  # (1, P, H)
    mask = torch.zeros(
        positions.numel(), view.shape[1], 1, dtype=view.dtype, device=view.device
    )
    mask[torch.arange(positions.numel(), device=view.device), positions, 0] = 1
    return from_positions(mask * view, tuple(direction.shape))


def group_directions(direction: Tensor, weights: Tensor) -> Tensor:
    """Copies of ``direction`` (one example, shape ``(1, *activation)``), the ``i``-th with
    each position scaled by ``weights[i, position]`` (``(C, positions)``): the direction of
    a group of positions. One-hot rows give :func:`one_position_directions`."""
    view = as_positions(direction)  # (1, P, H)
    scaled = weights.to(device=view.device, dtype=view.dtype)[:, :, None] * view
    return from_positions(scaled, tuple(direction.shape))
