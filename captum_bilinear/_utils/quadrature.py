"""Interpolation nodes and weights for the path integrals, taken from Captum."""

from typing import Tuple

import torch
from captum.attr._utils.approximation_methods import (
    SUPPORTED_METHODS,
    SUPPORTED_RIEMANN_METHODS,
    approximation_parameters,
)
from torch import Tensor


def check_quadrature(n_steps: object, method: object) -> None:
    """Raises a clear error for an unusable ``n_steps`` / ``method`` pair."""
    if not isinstance(method, str) or method not in SUPPORTED_METHODS:
        raise ValueError(
            f"method: expected one of {', '.join(repr(m) for m in SUPPORTED_METHODS)}, got {method!r}"
        )
    if isinstance(n_steps, bool) or not isinstance(n_steps, int):
        raise TypeError(f"n_steps: expected an int, got {type(n_steps).__name__}")
    minimum = 2 if method in SUPPORTED_RIEMANN_METHODS else 1
    if n_steps < minimum:
        raise ValueError(f"n_steps: method {method!r} needs n_steps >= {minimum}, got {n_steps}")


def interpolation_nodes(n_steps: int, method: str) -> Tuple[Tensor, Tensor]:
    """``(alphas, weights)`` in float64: the path points ``reference + alpha * delta`` and
    the quadrature weights of Captum's ``method`` (they sum to one)."""
    check_quadrature(n_steps, method)
    step_sizes, alphas = approximation_parameters(method)
    return (
        torch.tensor(alphas(n_steps), dtype=torch.float64),
        torch.tensor(step_sizes(n_steps), dtype=torch.float64),
    )
