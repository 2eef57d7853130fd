"""Path integrals to a tolerance on what is returned: adaptive Gauss-Kronrod panels.

Each panel ``[lo, hi]`` is integrated by a Gauss-Kronrod pair (:func:`kronrod_rule`): the
Kronrod rule's value is kept, the embedded Gauss rule reuses its nodes and their
difference, entry by entry, shows how far the panel's result can still move. That
difference over-states the Kronrod rule's error, typically by orders of magnitude. The
integrals here are of a total derivative, so every panel also has an exact check that
costs one plain forward pass per breakpoint: the integrand summed over positions
integrates to ``value(hi) - value(lo)``. The ratio of the two rules' exact residuals in
that direction calibrates the entry-wise difference into the estimate of the kept
rule's error on what is returned (the map, the grouped matrix), times :data:`SAFETY`.
Panels whose estimate is above their share of the tolerance by length are bisected; the
others are kept. The completeness residuals are reported, not held to the
tolerance: they sum the whole matrix, whose cancellations make them stricter than any
entry needs (a pair of the demo model took 374 nodes for them where its map had converged
at 99). ``benchmarks/quadrature.py`` measures the estimate against N = 512
Gauss-Legendre on held-out pairs (nodes, time, error reached).
"""

import math
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from captum_bilinear._utils.kronrod import kronrod_rule

#: ``n_steps``: a number of nodes, or ``"auto"``.
StepCount = Union[int, str]

#: The calibrated estimate times this: on held-out pairs of the demo model the error reached
#: was up to 2.5 times the estimate without it (``benchmarks/quadrature.py``).
SAFETY = 3.0

#: Gauss nodes of each panel's Gauss-Kronrod pair (the panel has ``2 n + 1`` nodes), panels
#: to start with, and the plain forward passes that place them (:func:`pilot_panels`);
#: chosen by ``benchmarks/quadrature.py`` (docs: Performance).
PANEL_GAUSS_NODES = 5
INITIAL_PANELS = 3
PILOT_POINTS = 17


def panel_nodes(gauss_nodes: int = PANEL_GAUSS_NODES) -> int:
    """Nodes of one panel: ``2 * gauss_nodes + 1``."""
    return 2 * gauss_nodes + 1


class AdaptiveResult(NamedTuple):
    integral: Tensor  #: the sum over accepted panels of their Kronrod integrals
    nodes: int  #: nodes of the final composite rule
    evaluated: int  #: nodes evaluated, bisected panels' included
    error: float  #: estimated relative error of ``integral`` (the caller's norm)
    completeness: float  #: the exact completeness residuals' share (the caller's units), summed over panels
    reached: bool  #: whether ``error`` is within the tolerance
    panels: List[Tuple[float, float]]  #: the final rule's panels
    errors: Tensor  #: ``(K, ...)``: each final panel's calibrated Kronrod-Gauss difference (its error estimate)


def panel_rule(panels: List[Tuple[float, float]], gauss_nodes: int = PANEL_GAUSS_NODES) -> Tuple[Tensor, Tensor]:
    """Nodes ``(len(panels) * m,)`` and weights ``(2 * len(panels), len(panels) * m)`` (float64,
    ``m = 2 * gauss_nodes + 1``): row ``k`` the Kronrod weights of panel ``k``, row
    ``len(panels) + k`` its Gauss weights (zero at the Kronrod-only nodes).

    Example:
        >>> alphas, weights = panel_rule([(0.0, 0.5), (0.5, 1.0)], gauss_nodes=2)
        >>> alphas.shape, weights.shape, [round(float(w), 12) for w in weights.sum(1)]
        (torch.Size([10]), torch.Size([4, 10]), [0.5, 0.5, 0.5, 0.5])
    """
    nodes, kronrod, gauss = kronrod_rule(gauss_nodes)
    m = len(nodes)
    alphas = np.concatenate([lo + (hi - lo) * nodes for lo, hi in panels])
    weights = np.zeros((2 * len(panels), len(alphas)))
    for k, (lo, hi) in enumerate(panels):
        weights[k, k * m : (k + 1) * m] = kronrod * (hi - lo)
        weights[len(panels) + k, k * m : (k + 1) * m] = gauss * (hi - lo)
    return torch.from_numpy(alphas), torch.from_numpy(weights)


def _calibration(kronrod_residual: Tensor, gauss_residual: Tensor) -> Tensor:
    """``(K,)``: how much closer the Kronrod rule came than the Gauss rule, per panel, in the
    exactly checked direction (at most 1; 1 where the Gauss rule is already exact)."""
    kronrod_norm = kronrod_residual.flatten(1).norm(dim=1)
    gauss_norm = gauss_residual.flatten(1).norm(dim=1)
    ratio = kronrod_norm / gauss_norm.clamp_min(torch.finfo(gauss_norm.dtype).tiny)
    return torch.where(gauss_norm > 0, ratio.clamp(max=1.0), torch.ones_like(ratio))


def integrate_adaptively(
    integrate: Callable[[Tensor, Tensor], Tensor],
    summed: Callable[[Tensor], Tensor],
    values: Callable[[Tensor], Tensor],
    relative_error: Callable[[Tensor, Tensor], Tensor],
    completeness: Callable[[Tensor], Tensor],
    tolerance: float,
    max_nodes: int,
    gauss_nodes: int = PANEL_GAUSS_NODES,
    initial: Optional[List[Tuple[float, float]]] = None,
) -> AdaptiveResult:
    """Integrates over ``[0, 1]`` until the estimated relative error of the result is at
    most ``tolerance``, or the next round would pass ``max_nodes`` evaluated nodes.

    Args:
        integrate: ``(alphas (n,), weights (W, n)) -> (W, ...)``, W weighted sums of the
            integrand (the panels' Kronrod and Gauss integrals).
        summed: ``(K, ...) -> (K, C)``, each panel's integral summed over positions.
        values: ``alphas (n,) -> (n, C)``, the primitive whose differences ``summed``
            must equal.
        relative_error: ``(differences (K, ...), total (...)) -> (K,)``: each panel's
            entry-wise Kronrod-Gauss difference in units of the returned total (e.g. the
            largest absolute difference over the largest absolute value).
        completeness: ``(K, C) -> (K,)``: each panel's exact residual as a share of the
            score it must add up to (reported: :attr:`AdaptiveResult.completeness`).
        initial: the panels to start with (default :data:`INITIAL_PANELS` equal ones).
    """
    cache: Dict[float, Tensor] = {}

    def primitive(points: List[float]) -> Dict[float, Tensor]:
        missing = sorted({p for p in points if p not in cache})
        if missing:
            for point, value in zip(missing, values(torch.tensor(missing, dtype=torch.float64))):
                cache[point] = value
        return cache

    def evaluate(panels: List[Tuple[float, float]]) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        alphas, weights = panel_rule(panels, gauss_nodes)
        integrals = integrate(alphas, weights)
        kronrod, gauss = integrals[: len(panels)], integrals[len(panels) :]
        known = primitive([p for panel in panels for p in panel])
        change = torch.stack([known[hi] - known[lo] for lo, hi in panels]).to(kronrod.dtype)
        kronrod_residual = summed(kronrod) - change
        calibration = _calibration(kronrod_residual, summed(gauss) - change)
        return kronrod, kronrod - gauss, calibration, kronrod_residual

    m = panel_nodes(gauss_nodes)
    panels = list(initial) if initial else [(k / INITIAL_PANELS, (k + 1) / INITIAL_PANELS)
                                            for k in range(INITIAL_PANELS)]
    integrals, differences, calibrations, residuals = evaluate(panels)
    evaluated = len(panels) * m
    while True:
        total = integrals.sum(0)
        errors = SAFETY * calibrations.to(total.dtype) * relative_error(differences, total).to(total.dtype)
        if float(errors.sum()) <= tolerance:
            break
        lengths = torch.tensor([hi - lo for lo, hi in panels], dtype=total.dtype)
        rough_mask = errors > tolerance * lengths
        if not bool(rough_mask.any()):  # the sum is above the tolerance, no panel alone is
            rough_mask[int(torch.argmax(errors))] = True
        rough = rough_mask.nonzero().flatten().tolist()
        if evaluated + 2 * m * len(rough) > max_nodes:
            break
        halves = [half for k in rough for half in _bisect(panels[k])]
        new = evaluate(halves)
        evaluated += len(halves) * m
        keep = [k for k in range(len(panels)) if not rough_mask[k]]
        panels = [panels[k] for k in keep] + halves
        integrals, differences, calibrations, residuals = (
            torch.cat([old[keep], fresh]) for old, fresh in zip((integrals, differences, calibrations, residuals), new)
        )
    error, share = float(errors.sum()), float(completeness(residuals).sum())
    reached = error <= tolerance or math.isclose(error, tolerance)
    order = sorted(range(len(panels)), key=lambda k: panels[k])
    scaled = SAFETY * differences * calibrations.to(differences.dtype).view((-1,) + (1,) * (differences.dim() - 1))
    return AdaptiveResult(integrals.sum(0), len(panels) * m, evaluated, error, share, reached,
                          [panels[k] for k in order], scaled[order])


def pilot_panels(points: Tensor, values: Tensor, count: int, floor: float = 0.3) -> List[Tuple[float, float]]:
    """``count`` panels over ``[0, 1]`` with edges among ``points``, narrower where the path
    turns: each interval between pilot points weighs what its primitive's change differs
    from its neighbours' (a second difference of ``values``, ``(len(points), C)``), plus
    ``floor`` spread evenly, and the edges split that weight into equal shares.

    Example:
        >>> points = torch.linspace(0, 1, 9, dtype=torch.float64)
        >>> values = torch.tanh(40 * (points - 0.3))[:, None]  # turns sharply near 0.3
        >>> [(round(lo, 3), round(hi, 3)) for lo, hi in pilot_panels(points, values, 3)]
        [(0.0, 0.25), (0.25, 0.375), (0.375, 1.0)]
    """
    steps = (values[1:] - values[:-1]).flatten(1).norm(dim=1).double()  # (intervals,)
    bends = (steps[1:] - steps[:-1]).abs()
    weight = torch.zeros_like(steps)
    if len(bends):
        weight[:-1] = torch.maximum(weight[:-1], bends)
        weight[1:] = torch.maximum(weight[1:], bends)
    total = float(weight.sum())
    share = (1 - floor) * weight / total if total > 0 else torch.zeros_like(weight)
    share = share + floor / len(steps) if total > 0 else torch.full_like(weight, 1 / len(steps))
    cumulative = torch.cat([torch.zeros(1, dtype=torch.float64), share.cumsum(0)])
    edges = [0]
    for k in range(1, count):
        index = int(torch.argmin((cumulative - k / count).abs()))
        if edges[-1] < index < len(points) - 1:
            edges.append(index)
    edges.append(len(points) - 1)
    grid = points.tolist()
    return [(grid[lo], grid[hi]) for lo, hi in zip(edges[:-1], edges[1:])]


def _bisect(panel: Tuple[float, float]) -> Tuple[Tuple[float, float], Tuple[float, float]]:
    lo, hi = panel
    middle = (lo + hi) / 2
    return (lo, middle), (middle, hi)


def max_relative(differences: Tensor, total: Tensor) -> Tensor:
    """``(K,)``: each panel's largest absolute difference over the total's largest absolute value.

    Example:
        >>> max_relative(torch.tensor([[0.1, -0.2], [0.0, 0.05]]), torch.tensor([1.0, -2.0]))
        tensor([0.1000, 0.0250])
    """
    scale = total.abs().max().clamp_min(torch.finfo(total.dtype).tiny)
    return differences.flatten(1).abs().max(dim=1).values / scale


def column_relative(differences: Tensor, total: Tensor) -> Tensor:
    """``(K,)``: for ``(K, D, columns)`` differences, each panel's largest column norm over
    the total's largest column norm (an integrated Jacobian's columns are what later
    contractions see).

    Example:
        >>> column_relative(torch.tensor([[[3.0], [4.0]]]), torch.tensor([[0.0], [10.0]]))
        tensor([0.5000])
    """
    scale = total.norm(dim=0).max().clamp_min(torch.finfo(total.dtype).tiny)
    return differences.norm(dim=1).max(dim=-1).values / scale


def check_tolerance(tolerance: object, max_steps: object = None) -> None:
    """Clear errors for ``n_steps="auto"``'s ``tolerance`` and ``max_steps``."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise ValueError(f"tolerance: expected a relative error in (0, 1), got {tolerance!r}")
    if max_steps is None:
        return
    minimum = INITIAL_PANELS * panel_nodes()
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < minimum:
        raise ValueError(f"max_steps: expected an int >= {minimum} (the first rule's nodes), got {max_steps!r}")
