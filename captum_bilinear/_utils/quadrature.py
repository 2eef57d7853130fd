"""Interpolation nodes and weights for the path integrals, under Captum's method names.

Gauss-Legendre is Captum's (numpy's, in float64). The Riemann rules are Captum's rules
with their nodes in float64 (Captum rounds them to float32) and, for
``"riemann_trapezoid"``, the trapezoid rule's weights ``h/2, h, ..., h, h/2`` with
``h = 1/(n-1)`` on Captum's nodes ``0, h, ..., 1``: Captum's step sizes there are
``1/(2n), 1/n, ..., 1/n, 1/(2n)``, which sum to ``(n-1)/n``, so a path integral of a
constant would come out ``(n-1)/n`` of its value (and BII's interactions
``((n-1)/n)^2`` of theirs). Every rule integrates constants exactly; Gauss-Legendre,
midpoint and trapezoid also integrate ``alpha`` exactly, the left and right Riemann sums
by definition do not (their error is ``-/+ 1/(2n)`` of the integrand's change).
"""

import numbers
from typing import Tuple, Union

import numpy as np
import torch
from captum.attr._utils.approximation_methods import (
    SUPPORTED_METHODS,
    SUPPORTED_RIEMANN_METHODS,
    approximation_parameters,
)
from torch import Tensor

from captum_bilinear._utils.step_limit import MAX_STEPS, check_step_limit  # noqa: F401  (MAX_STEPS: re-exported)


def check_quadrature(n_steps: object, method: object) -> Union[int, str]:
    """``n_steps`` as an ``int`` (numpy integers converted), or ``"auto"`` passed through
    for the caller to handle; a clear error for an unusable ``n_steps`` / ``method``.

    Example:
        >>> import numpy as np
        >>> check_quadrature(np.int64(8), "gausslegendre"), check_quadrature("auto", "gausslegendre")
        (8, 'auto')
        >>> check_quadrature(10**9, "riemann_middle")
        Traceback (most recent call last):
        ...
        ValueError: n_steps: expected at most 4096 nodes per path integral, got 1000000000 (n_steps='auto' chooses the nodes for a tolerance)
    """
    if not isinstance(method, str) or method not in SUPPORTED_METHODS:
        raise ValueError(
            f"method: expected one of {', '.join(repr(m) for m in SUPPORTED_METHODS)}, got {method!r}"
        )
    if isinstance(n_steps, str):
        if n_steps == "auto":
            return n_steps
        raise ValueError(f"n_steps: expected an int or 'auto', got {n_steps!r}")
    if isinstance(n_steps, (bool, np.bool_)) or not isinstance(n_steps, numbers.Integral):
        raise TypeError(f"n_steps: expected an int or 'auto', got {type(n_steps).__name__}")
    n_steps = int(n_steps)
    minimum = 2 if method in SUPPORTED_RIEMANN_METHODS else 1
    if n_steps < minimum:
        raise ValueError(f"n_steps: method {method!r} needs n_steps >= {minimum}, got {n_steps}")
    check_step_limit(n_steps)
    return n_steps


def _riemann_nodes(n_steps: int, method: str) -> Tensor:
    """Captum's Riemann nodes (``torch.linspace`` between the same ends), in float64."""
    h = 1.0 / n_steps
    ends = {
        "riemann_left": (0.0, 1.0 - h),
        "riemann_right": (h, 1.0),
        "riemann_middle": (h / 2, 1.0 - h / 2),
        "riemann_trapezoid": (0.0, 1.0),
    }[method]
    return torch.linspace(*ends, n_steps, dtype=torch.float64)


def interpolation_nodes(n_steps: int, method: str) -> Tuple[Tensor, Tensor]:
    """``(alphas, weights)`` in float64: the path points ``reference + alpha * delta`` and
    the quadrature weights of ``method`` on ``[0, 1]`` (they sum to one).

    Example:
        >>> alphas, weights = interpolation_nodes(5, "riemann_trapezoid")
        >>> alphas.tolist(), weights.tolist()
        ([0.0, 0.25, 0.5, 0.75, 1.0], [0.125, 0.25, 0.25, 0.25, 0.125])
    """
    n_steps = check_quadrature(n_steps, method)  # type: ignore[assignment]
    if n_steps == "auto":
        raise ValueError("n_steps: 'auto' has no fixed nodes; the adaptive rule chooses them")
    step_sizes, alphas = approximation_parameters(method)
    if method == "gausslegendre":
        return (
            torch.tensor(alphas(n_steps), dtype=torch.float64),
            torch.tensor(step_sizes(n_steps), dtype=torch.float64),
        )
    nodes = _riemann_nodes(n_steps, method)
    if method == "riemann_trapezoid":
        h = 1.0 / (n_steps - 1)
        weights = torch.full((n_steps,), h, dtype=torch.float64)
        weights[[0, -1]] = h / 2
        return nodes, weights
    return nodes, torch.tensor(step_sizes(n_steps), dtype=torch.float64)
