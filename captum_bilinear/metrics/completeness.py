"""Completeness error: how far the interactions are from summing to the four-term identity."""

from typing import Any, Union

import torch  # noqa: F401  (the examples use it)
from torch import Tensor

from captum_bilinear._utils.checks import as_tensor

IdentityLike = Union[Tensor, float, Any]


def _identity(identity: IdentityLike, batch: int, like: Tensor) -> Tensor:
    if hasattr(identity, "interaction") and not isinstance(identity, (Tensor, float, int)):
        identity = identity.interaction  # e.g. captum_bilinear.SimilarityTerms
    tensor = as_tensor(identity, "identity").to(like.dtype)
    if tensor.dim() == 0:
        return tensor.expand(batch)
    if tuple(tensor.shape) != (batch,):
        raise ValueError(f"identity: expected shape ({batch},) to match interactions, got {tuple(tensor.shape)}")
    return tensor


def _check_interactions(interactions: Tensor) -> Tensor:
    tensor = as_tensor(interactions, "interactions")
    if tensor.dim() != 3:
        raise ValueError(
            f"interactions: expected shape (batch, positions_a, positions_b), got {tuple(tensor.shape)}"
        )
    return tensor


def completeness_error(interactions: Tensor, identity: IdentityLike) -> Tensor:
    """``|Σ A - identity|`` per example.

    Args:
        interactions: ``A``, shape ``(batch, positions_a, positions_b)``.
        identity: ``f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)``, shape ``(batch,)`` or a
            number; anything with an ``.interaction`` attribute (such as
            :class:`captum_bilinear.SimilarityTerms`) is read through it.

    Returns:
        ``(batch,)``, non-negative, in the dtype of ``interactions``.

    Example:
        >>> A = torch.tensor([[[0.25, 0.5], [0.0, 0.25]]])   # sums to 1.0
        >>> completeness_error(A, torch.tensor([0.9]))
        tensor([0.1000])
    """
    tensor = _check_interactions(interactions)
    target = _identity(identity, tensor.shape[0], tensor)
    return (tensor.sum((1, 2)) - target).abs()


def relative_completeness_error(interactions: Tensor, identity: IdentityLike) -> Tensor:
    """``|Σ A - identity| / |identity|`` per example (``inf`` where the identity is 0
    and the sum is not, ``nan`` where both are 0).

    Args:
        interactions: ``A``, shape ``(batch, positions_a, positions_b)``.
        identity: as in :func:`completeness_error`.

    Returns:
        ``(batch,)``.

    Example:
        >>> A = torch.tensor([[[0.25, 0.5], [0.0, 0.25]]])
        >>> relative_completeness_error(A, torch.tensor([0.8]))
        tensor([0.2500])
    """
    tensor = _check_interactions(interactions)
    target = _identity(identity, tensor.shape[0], tensor)
    return (tensor.sum((1, 2)) - target).abs() / target.abs()
