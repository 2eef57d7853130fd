"""The bilinear combination of two sides' integrated Jacobians, without either Jacobian.

``A[s, p] = scale * sum_k T[k, s] U[k, p]`` with ``T`` (``U``) the integrated Jacobian of
side a (b) times its direction, summed over hidden dims per position. One side's ``T`` is
computed (forward or reverse mode, whichever needs fewer passes); the other side is
reached by contraction: row ``s`` of ``A`` is the integrated gradient of the scalar
``T[:, s] . h`` (one VJP per first-side position and node). With the references'
embeddings, the first-order terms come with it: the first side's integrated gradients of
``f(., r_other)`` are ``scale * e(r_other) . T`` (free), the second side's are one more
cotangent, ``e(r_first)``, in the contraction.

Groups of positions (``(G, positions)`` weights per side) are players as positions are:
a group's column of ``T`` is one JVP along the direction restricted to the group, and its
row of ``A`` one contraction, so the passes per node follow the first side's groups; the
second side's per-position results are summed into its groups at the end.
"""

import math
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

from captum_bilinear._utils.adaptive_quadrature import (
    INITIAL_PANELS,
    PILOT_POINTS,
    StepCount,
    check_tolerance,
    column_relative,
    integrate_adaptively,
    max_relative,
    panel_rule,
    pilot_panels,
)
from captum_bilinear._utils.encoder_side import EncoderSide
from captum_bilinear._utils.groups import complement, grouped, is_partition
from captum_bilinear._utils.integration import integrated_jvps, integrated_vjps, path_embeddings
from captum_bilinear._utils.positions import num_positions
from captum_bilinear._utils.progress import SILENT, Progress
from captum_bilinear._utils.quadrature import interpolation_nodes


class PathSide:
    """One side's straight path ``reference + alpha * delta``, its direction and its groups
    (``(G, positions)`` weights, or None: every position its own player)."""

    def __init__(self, encoder: EncoderSide, activation: Tensor, reference: Tensor, multiply_by_inputs: bool,
                 groups: Optional[Tensor] = None) -> None:
        self.encoder = encoder
        self.reference = reference
        self.delta = activation - reference
        self.direction = self.delta if multiply_by_inputs else torch.ones_like(self.delta)
        self.positions = num_positions(self.delta)
        self.groups = groups
        self.players = self.positions if groups is None else groups.shape[0]
        self.partition = is_partition(groups)
        # The tangents of the first side: its groups, and what they leave of the direction
        # (so that the tangents add up to the whole direction and completeness checks it).
        rest = None if groups is None else complement(groups)
        self.tangents = groups if rest is None else torch.cat([groups, rest[None]])  # type: ignore[list-item]

    @property
    def tangent_count(self) -> int:
        return self.positions if self.tangents is None else self.tangents.shape[0]

    def integrated_jacobian(
        self, alphas: Tensor, weights: Tensor, embedding_dim: int, internal_batch_size: Optional[int],
        progress: Progress = SILENT,
    ) -> Tensor:
        """``(D, tangents)`` (``(K, D, tangents)`` for panel weights): forward mode (one JVP
        per tangent -- position or group -- and node) when there are fewer tangents than
        embedding dimensions, else reverse mode (one VJP per embedding dimension and node)
        summed into the groups. The first :attr:`players` columns are the players'."""
        if self.tangent_count <= embedding_dim:
            return integrated_jvps(self.encoder, self.reference, self.delta, self.direction, alphas, weights,
                                   internal_batch_size, progress, groups=self.tangents)
        identity = torch.eye(embedding_dim, dtype=self.delta.dtype, device=self.delta.device)
        per_position = self.contract(identity, alphas, weights, internal_batch_size, progress)
        return grouped(per_position, self.tangents)

    def contract(
        self, cotangents: Tensor, alphas: Tensor, weights: Tensor, internal_batch_size: Optional[int],
        progress: Progress = SILENT,
    ) -> Tensor:
        """``(C, positions)``: integrated gradient of each ``cotangents[c] . embedding``, per position."""
        return integrated_vjps(
            self.encoder, self.reference, self.delta, self.direction, alphas, weights, cotangents, internal_batch_size,
            progress=progress,
        )

    def embeddings(self, alphas: Tensor, internal_batch_size: Optional[int]) -> Tensor:
        """``(len(alphas), D)`` embeddings along the path."""
        return path_embeddings(self.encoder, self.reference, self.delta, alphas, internal_batch_size)

    def pass_count(self, embedding_dim: int) -> int:
        """Passes per node if this side goes first: its Jacobian, then one contraction
        VJP per player on the other side."""
        return min(self.tangent_count, embedding_dim) + self.players


class FixedRule(NamedTuple):
    """A quadrature given by the user: nodes and weights (float64)."""

    alphas: Tensor
    weights: Tensor


class ToTolerance(NamedTuple):
    """``n_steps="auto"``: Gauss-Kronrod panels refined until the estimated relative error
    of what is returned is within ``tolerance``."""

    tolerance: float
    max_steps: int


Rule = Union[FixedRule, ToTolerance]


def quadrature_rule(n_steps: StepCount, method: str, tolerance: float, max_steps: int) -> Rule:
    """The rule ``n_steps`` asks for, its arguments checked before any work."""
    if n_steps == "auto":
        if method != "gausslegendre":
            raise ValueError(f"method: n_steps='auto' refines Gauss-Kronrod panels; expected "
                             f"'gausslegendre', got {method!r}")
        check_tolerance(tolerance, max_steps)
        return ToTolerance(float(tolerance), int(max_steps))
    return FixedRule(*interpolation_nodes(n_steps, method))  # type: ignore[arg-type]


class Endpoints(NamedTuple):
    """``g(a), g(r_a), h(b), h(r_b)``: the embeddings at both ends of both paths."""

    g_input: Tensor
    g_reference: Tensor
    h_input: Tensor
    h_reference: Tensor

    def identity(self, scale: float) -> Tensor:
        """``f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)``, what the interactions sum to."""
        return scale * torch.dot(self.g_input - self.g_reference, self.h_input - self.h_reference)


class BilinearTerms(NamedTuple):
    cross: Tensor  #: ``(players_a, players_b)``
    first_a: Optional[Tensor]  #: ``(players_a,)`` (None without endpoints)
    first_b: Optional[Tensor]
    nodes: int  #: nodes of the final rule (the larger side's)
    error: float  #: ``n_steps="auto"``: the estimated relative error of the result; else nan
    reached: bool  #: whether the tolerance was met (True for fixed rules)
    evaluated: int  #: nodes evaluated on both sides (bisected panels' included)


def bilinear_terms(
    side_a: PathSide,
    side_b: PathSide,
    rule: Rule,
    embedding_dim: int,
    scale: float,
    endpoints: Optional[Endpoints] = None,
    internal_batch_size: Optional[int] = None,
    progress: Progress = SILENT,
    first_order: bool = True,
) -> BilinearTerms:
    """Interactions (and with ``endpoints`` and ``first_order`` the first-order terms) of
    the sides' players, the cheaper side order chosen. ``n_steps="auto"`` needs the
    endpoints (its completeness check); ``first_order=False`` spares the second side's
    first-order cotangent."""
    a_first = side_a.pass_count(embedding_dim) <= side_b.pass_count(embedding_dim)
    first, second = (side_a, side_b) if a_first else (side_b, side_a)
    first_ref = second_ref = None
    if endpoints is not None and first_order:
        g_in, g_ref, h_in, h_ref = endpoints
        first_ref, second_ref = (g_ref, h_ref) if a_first else (h_ref, g_ref)
    if isinstance(rule, FixedRule):
        progress.expect(len(rule.alphas) * (first.tangent_count + first.players + (first_ref is not None)))
        jacobian = first.integrated_jacobian(rule.alphas, rule.weights, embedding_dim, internal_batch_size, progress)
        cotangents = _cotangents(jacobian[:, : first.players], first_ref)
        contracted = second.contract(cotangents, rule.alphas, rule.weights, internal_batch_size, progress)
        nodes, error, reached, evaluated = len(rule.alphas), math.nan, True, 2 * len(rule.alphas)
    else:
        if endpoints is None:
            raise ValueError("n_steps='auto' needs the endpoint embeddings")
        jacobian, contracted, nodes, error, reached, evaluated = _to_tolerance(
            first, second, rule, embedding_dim, scale, endpoints, a_first, first_ref, internal_batch_size, progress)
    jacobian = jacobian[:, : first.players]
    contracted = grouped(contracted, second.groups)  # (C, players of the second side)
    cross = scale * contracted[: first.players]
    terms: Tuple[Optional[Tensor], Optional[Tensor]] = (None, None)
    if second_ref is not None:
        of_first = scale * (second_ref.to(jacobian.dtype) @ jacobian)
        of_second = scale * contracted[first.players]
        terms = (of_first, of_second) if a_first else (of_second, of_first)
    return BilinearTerms(cross if a_first else cross.T, terms[0], terms[1], nodes, error, reached, evaluated)


#: The share of ``tolerance`` each phase of ``n_steps="auto"`` gets: the first side's
#: Jacobian columns (cheap passes, and their error reaches the matrix amplified by the
#: other side), and the matrix itself from the contraction; the first side's error in the
#: matrix, estimated by a probe, takes the rest.
FIRST_SIDE_SHARE = 0.25
SECOND_SIDE_SHARE = 0.5


def _error_probe(panel_errors: Tensor, players: int) -> Tensor:
    """``(D,)``: the first side's estimated errors (``(K, D, tangents)``, one per panel and
    column) combined with fixed random signs. Contracted like a column of ``T``, it gives
    a row whose entries have the root-sum-square of the per-panel, per-group errors of
    ``A`` as their expected size: the first side's error, seen in the returned matrix."""
    errors = panel_errors[..., :players]
    generator = torch.Generator().manual_seed(0)
    signs = torch.randint(0, 2, (errors.shape[0], 1, players), generator=generator).to(errors.dtype) * 2 - 1
    return (errors * signs).sum((0, 2))


def _to_tolerance(
    first: PathSide, second: PathSide, rule: ToTolerance, embedding_dim: int, scale: float, endpoints: Endpoints,
    a_first: bool, first_ref: Optional[Tensor], internal_batch_size: Optional[int], progress: Progress,
) -> Tuple[Tensor, Tensor, int, float, bool, int]:
    """Both sides' integrals to ``rule.tolerance``. The first side's Jacobian columns go to
    :data:`FIRST_SIDE_SHARE` of it (relative to the largest column); then the contraction
    -- the returned matrix, in its groups, and the first-order row -- to
    :data:`SECOND_SIDE_SHARE` (relative to the largest entry; the first-order row to its
    own). One more cotangent, a random-sign sum of the first side's panel errors,
    contracted on the contraction's first panels, shows how large they are in the
    matrix; if that is above the rest of the tolerance, the first side is refined further
    and contracted again. The completeness residuals, exact per panel, calibrate the
    estimates (and are reported, not held to the tolerance). Returns
    the Jacobian, the contraction (``C`` rows: players, then the first-order row if any),
    nodes, the estimated error, whether the tolerance was met and the nodes evaluated."""
    g_in, g_ref, h_in, h_ref = endpoints
    second_change = (h_in - h_ref) if a_first else (g_in - g_ref)
    identity = max(abs(float(endpoints.identity(scale))), 1e-12)
    checks_completeness = first.partition and second.partition
    players = first.players

    def first_completeness(residuals: Tensor) -> Tensor:  # (K, D): its share of the convergence delta
        if not checks_completeness:
            return torch.zeros(residuals.shape[0], dtype=residuals.dtype)
        return scale * (residuals @ second_change.to(residuals.dtype)).abs() / identity

    def second_error(differences: Tensor, total: Tensor) -> Tensor:  # (K, C, positions), (C, positions)
        differences, total = grouped(differences, second.groups), grouped(total, second.groups)
        error = max_relative(differences[:, :players], total[:players])
        if total.shape[0] > players:  # the first-order row, relative to its own largest entry
            error = torch.maximum(error, max_relative(differences[:, players:], total[players:]))
        return error

    def second_completeness(residuals: Tensor) -> Tensor:  # (K, C): the players' rows add up to the delta
        if not checks_completeness:
            return torch.zeros(residuals.shape[0], dtype=residuals.dtype)
        return scale * residuals[:, :players].sum(-1).abs() / identity

    first_values = _PathValues(first, internal_batch_size)
    second_values = _PathValues(second, internal_batch_size)
    evaluated = [0, 0]  # per side: max_steps bounds each
    first_tolerance = FIRST_SIDE_SHARE * rule.tolerance
    def first_jacobian(alphas: Tensor, weights: Tensor) -> Tensor:
        progress.expect(len(alphas) * min(first.tangent_count, embedding_dim))
        return first.integrated_jacobian(alphas, weights, embedding_dim, internal_batch_size, progress)

    for attempt in range(2):
        first_result = integrate_adaptively(
            first_jacobian,
            lambda integrals: integrals.sum(-1), first_values,
            lambda differences, total: column_relative(differences[..., :players], total[..., :players]),
            first_completeness, first_tolerance, rule.max_steps - evaluated[0], initial=first_values.panels(),
        )
        jacobian = first_result.integral
        cotangents = _cotangents(jacobian[:, :players], first_ref)
        def second_contraction(alphas: Tensor, weights: Tensor) -> Tensor:
            progress.expect(len(alphas) * len(cotangents))
            return second.contract(cotangents, alphas, weights, internal_batch_size, progress)

        second_result = integrate_adaptively(
            second_contraction,
            lambda integrals: integrals.sum(-1),
            lambda alphas: second_values(alphas).to(cotangents.dtype) @ cotangents.T,
            second_error, second_completeness, SECOND_SIDE_SHARE * rule.tolerance,
            rule.max_steps - evaluated[1], initial=second_values.panels(),
        )
        evaluated[0] += first_result.evaluated
        evaluated[1] += second_result.evaluated
        # the first side's errors as the matrix sees them: one more cotangent on the first panels
        probe = _error_probe(first_result.errors, players).to(jacobian.dtype)
        alphas, weights = panel_rule(second_values.panels())
        probed = second.contract(probe[None], alphas, weights[: len(weights) // 2].sum(0, keepdim=True),
                                 internal_batch_size)  # one cotangent: not counted as nodes evaluated
        contracted = grouped(second_result.integral, second.groups)
        largest = contracted[:players].abs().max().clamp_min(torch.finfo(contracted.dtype).tiny)
        first_error = float(grouped(probed, second.groups).abs().max() / largest)
        if first_error <= rule.tolerance - SECOND_SIDE_SHARE * rule.tolerance or not first_result.reached:
            break
        first_tolerance /= 10  # the matrix amplifies the first side's errors: refine it, contract again
    nodes = max(first_result.nodes, second_result.nodes)
    error = first_error + second_result.error
    reached = first_result.reached and second_result.reached and error <= rule.tolerance * (1 + 1e-9)
    return jacobian, second_result.integral, nodes, error, reached, sum(evaluated)


class _PathValues:
    """A side's embeddings along its path (the primitive of the completeness check), and
    the first panels placed by them: a few plain forward passes show where the embedding
    turns, and the panels are narrower there (:data:`PILOT_POINTS`)."""

    def __init__(self, side: PathSide, internal_batch_size: Optional[int]) -> None:
        self.side = side
        self.internal_batch_size = internal_batch_size
        self._initial: Optional[List[Tuple[float, float]]] = None
        self._known: Dict[float, Tensor] = {}

    def __call__(self, alphas: Tensor) -> Tensor:
        missing = [float(a) for a in alphas.tolist() if float(a) not in self._known]
        if missing:
            values = self.side.embeddings(torch.tensor(missing, dtype=torch.float64), self.internal_batch_size)
            self._known.update(zip(missing, values))
        return torch.stack([self._known[float(a)] for a in alphas.tolist()])

    def panels(self) -> List[Tuple[float, float]]:
        if self._initial is None:
            points = torch.linspace(0, 1, PILOT_POINTS, dtype=torch.float64)
            self._initial = pilot_panels(points, self(points), INITIAL_PANELS)
        return self._initial


def _cotangents(jacobian: Tensor, first_reference: Optional[Tensor]) -> Tensor:
    """The contraction's cotangents: ``T``'s columns, and the first side's reference
    embedding for the second side's first-order terms."""
    rows = jacobian.T.contiguous()
    if first_reference is None:
        return rows
    return torch.cat([rows, first_reference.to(rows.dtype)[None]])


def bilinear_interactions(
    side_a: PathSide,
    side_b: PathSide,
    alphas: Tensor,
    weights: Tensor,
    embedding_dim: int,
    scale: float,
    internal_batch_size: Optional[int] = None,
    progress: Progress = SILENT,
) -> Tensor:
    """``(players_a, players_b)`` interactions of a fixed rule, the cheaper side order chosen."""
    return bilinear_terms(side_a, side_b, FixedRule(alphas, weights), embedding_dim, scale, None,
                          internal_batch_size, progress).cross
