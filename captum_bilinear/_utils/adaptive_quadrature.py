"""Path integrals to a tolerance: composite Gauss-Legendre with adaptive bisection.

The integrals here are of a total derivative, so every panel ``[lo, hi]`` has an exact
check that costs one plain forward pass per breakpoint: the integrand summed over
positions integrates to ``value(hi) - value(lo)`` (the embedding's change along that
piece of the path). The panel's *residual* -- its quadrature summed over positions minus
that change -- is its error in that direction, exactly; it cannot cancel across panels
or across embedding dimensions, because the norms of the residual vectors are added.
Panels whose residual is above their share of the tolerance (by length) are bisected;
the others are kept, so every node of an accepted panel is used and only the nodes of
bisected panels are spent on the decision.
"""

import math
from typing import Callable, Dict, List, NamedTuple, Tuple, Union

import numpy as np
import torch
from torch import Tensor

#: ``n_steps``: a number of nodes, or ``"auto"``.
StepCount = Union[int, str]

#: Nodes per panel (degree 2m-1 exact) and panels to start with: 16 nodes, what the
#: smoothest pairs of the demo model need. 8-node panels needed fewer nodes than 4- or
#: 16-node ones for tolerances 1e-2 .. 1e-6 on integrands with a near-singular end
#: (tests/_utils/test_adaptive_quadrature.py has the family).
PANEL_NODES = 8
INITIAL_PANELS = 2


class AdaptiveResult(NamedTuple):
    integral: Tensor  #: the sum over accepted panels
    nodes: int  #: nodes of the final composite rule
    evaluated: int  #: nodes evaluated, bisected panels' included
    error: float  #: the summed residual norms (the caller's units)
    reached: bool  #: whether ``error <= target``
    panels: List[Tuple[float, float]]  #: the final rule's panels


def panel_rule(panels: List[Tuple[float, float]], m: int = PANEL_NODES) -> Tuple[Tensor, Tensor]:
    """Nodes ``(len(panels) * m,)`` and block weights ``(len(panels), len(panels) * m)``
    (float64) of an m-point Gauss-Legendre rule on each panel."""
    points, weights = np.polynomial.legendre.leggauss(m)
    alphas = np.concatenate([lo + (hi - lo) * (points + 1) / 2 for lo, hi in panels])
    block = np.zeros((len(panels), len(alphas)))
    for k, (lo, hi) in enumerate(panels):
        block[k, k * m : (k + 1) * m] = weights * (hi - lo) / 2
    return torch.from_numpy(alphas), torch.from_numpy(block)


def integrate_to_tolerance(
    integrate: Callable[[Tensor, Tensor], Tensor],
    summed: Callable[[Tensor], Tensor],
    values: Callable[[Tensor], Tensor],
    residual_norm: Callable[[Tensor], Tensor],
    target: float,
    max_nodes: int,
    m: int = PANEL_NODES,
    initial_panels: int = INITIAL_PANELS,
) -> AdaptiveResult:
    """Integrates over ``[0, 1]`` until the panels' residual norms sum to ``target`` or
    less, or the next round would pass ``max_nodes`` evaluated nodes.

    Args:
        integrate: ``(alphas (n,), weights (K, n)) -> (K, ...)``, K panels' integrals.
        summed: ``(K, ...) -> (K, C)``, each panel's integral summed over positions.
        values: ``alphas (n,) -> (n, C)``, the primitive whose differences ``summed``
            must equal.
        residual_norm: ``(K, C) -> (K,)`` residuals in the units of ``target``.
    """
    cache: Dict[float, Tensor] = {}

    def primitive(points: List[float]) -> Dict[float, Tensor]:
        missing = sorted({p for p in points if p not in cache})
        if missing:
            for point, value in zip(missing, values(torch.tensor(missing, dtype=torch.float64))):
                cache[point] = value
        return cache

    def evaluate(panels: List[Tuple[float, float]]) -> Tuple[Tensor, Tensor]:
        alphas, weights = panel_rule(panels, m)
        integrals = integrate(alphas, weights)
        known = primitive([p for panel in panels for p in panel])
        change = torch.stack([known[hi] - known[lo] for lo, hi in panels]).to(integrals.dtype)
        return integrals, residual_norm(summed(integrals) - change)

    panels = [(k / initial_panels, (k + 1) / initial_panels) for k in range(initial_panels)]
    integrals, errors = evaluate(panels)
    evaluated = len(panels) * m
    while True:
        total_error = float(errors.sum())
        if total_error <= target:
            break
        lengths = torch.tensor([hi - lo for lo, hi in panels], dtype=errors.dtype)
        rough = (errors > target * lengths).nonzero().flatten().tolist()  # non-empty: errors sum above target
        if evaluated + 2 * m * len(rough) > max_nodes:
            break
        halves = [half for k in rough for half in _bisect(panels[k])]
        new_integrals, new_errors = evaluate(halves)
        evaluated += len(halves) * m
        keep = [k for k in range(len(panels)) if k not in set(rough)]
        panels = [panels[k] for k in keep] + halves
        integrals = torch.cat([integrals[keep], new_integrals])
        errors = torch.cat([errors[keep], new_errors])
    total_error = float(errors.sum())
    return AdaptiveResult(integrals.sum(0), len(panels) * m, evaluated, total_error,
                          total_error <= target or math.isclose(total_error, target), sorted(panels))


def _bisect(panel: Tuple[float, float]) -> Tuple[Tuple[float, float], Tuple[float, float]]:
    lo, hi = panel
    middle = (lo + hi) / 2
    return (lo, middle), (middle, hi)


def check_tolerance(tolerance: object, max_steps: object = None) -> None:
    """Clear errors for ``n_steps="auto"``'s ``tolerance`` and ``max_steps``."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise ValueError(f"tolerance: expected a relative error in (0, 1), got {tolerance!r}")
    if max_steps is None:
        return
    minimum = INITIAL_PANELS * PANEL_NODES
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < minimum:
        raise ValueError(f"max_steps: expected an int >= {minimum} (the first rule's nodes), got {max_steps!r}")
