"""Sampling masks and coalitions for the perturbation methods, one side at a time.

With *cross-modal sampling* (InteractionLIME, WeightedBanzhafInteractions) each side
gets its own set of masks: ``m_a`` masks of side a and ``m_b`` masks of side b give all
``m_a * m_b`` masked pairs' similarities from ``m_a + m_b`` encoder passes. This module
draws the masks of one side and decides how many each side gets.

* :func:`bernoulli_masks`: independent keep-masks (LIME).
* :func:`weighted_coalitions`: distinct coalitions with weights that represent the
  ``p``-biased measure ``p^|M| (1-p)^(n-|M|)`` (weighted Banzhaf), enumerating the
  coalition sizes the budget covers (the border trick) and sampling the rest.
* :func:`split_samples` / :func:`split_budget`: ``(m_a, m_b)`` for the two sides.
"""

import itertools
import math
import numbers
from dataclasses import dataclass
from typing import Dict, List, Tuple, Union

import torch
from torch import Tensor


#: An int seed, a ``torch.Generator``, or None for a fresh random seed.
RandomState = Union[int, torch.Generator, None]


def as_generator(random_state: RandomState, name: str = "random_state") -> torch.Generator:
    """A CPU ``torch.Generator`` from a seed (reproducible), a generator (used as is), or
    None (seeded from the OS: not reproducible).

    Example:
        >>> a = torch.rand(2, generator=as_generator(3))
        >>> torch.equal(a, torch.rand(2, generator=as_generator(3)))
        True
    """
    if isinstance(random_state, torch.Generator):
        return random_state
    generator = torch.Generator()
    if random_state is None:
        generator.seed()
        return generator
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral) or random_state < 0:
        raise TypeError(f"{name}: expected None, a non-negative int seed or a torch.Generator, got {random_state!r}")
    if random_state >= 2**64:  # torch.Generator.manual_seed overflows ("unpacking long long")
        raise ValueError(f"{name}: {random_state} is too large for a seed; expected an int in [0, 2**64)")
    generator.manual_seed(int(random_state))
    return generator


class ExampleStreams:
    """One random stream per example, each starting from the same state, so an example's
    result does not depend on the batch it came in (same ``random_state``, same result).

    An int seed starts every example's stream from that seed; a ``torch.Generator`` from
    its current state (and is left where the last example's stream ended, so a second
    call draws anew); None from one fresh OS seed per call.

    Example:
        >>> streams = ExampleStreams(7)
        >>> first, second = streams.next(), streams.next()
        >>> torch.equal(torch.rand(2, generator=first), torch.rand(2, generator=second))
        True
    """

    def __init__(self, random_state: RandomState, name: str = "random_state") -> None:
        self._user = random_state if isinstance(random_state, torch.Generator) else None
        if self._user is not None:
            self._state = self._user.get_state()
        else:
            seed = as_generator(random_state, name).initial_seed()
            self._state = torch.Generator().manual_seed(seed).get_state()
        self._last: Union[torch.Generator, None] = None

    def next(self) -> torch.Generator:
        """A generator for the next example (the same initial state for every example)."""
        if self._last is not None and self._user is not None:
            self._user.set_state(self._last.get_state())
        generator = torch.Generator()
        generator.set_state(self._state)
        self._last = generator
        return generator

    def close(self) -> None:
        """Leaves a user's generator where the last example's stream ended."""
        if self._last is not None and self._user is not None:
            self._user.set_state(self._last.get_state())


def bernoulli_masks(rows: int, positions: int, p: float, generator: torch.Generator) -> Tensor:
    """``(rows, positions)`` bool: each position kept independently with ``p``.

    Example:
        >>> bernoulli_masks(4, 3, 0.7, as_generator(0)).shape
        torch.Size([4, 3])
    """
    return torch.rand(rows, positions, generator=generator, dtype=torch.float64) < p


def identifying_bernoulli_masks(
    rows: int, positions: int, p: float, generator: torch.Generator, attempts: int = 100
) -> Tensor:
    """Like :func:`bernoulli_masks`, redrawn (up to ``attempts`` times) until ``[1, masks]``
    has full column rank ``positions + 1`` (needs ``rows > positions``), so that a
    surrogate with an intercept and a coefficient per kept position is identified. Small
    sides need this: three positions with 7 masks at ``p=0.7`` are often
    collinear. The masks are then Bernoulli draws conditioned on identifiability.

    Example:
        >>> masks = identifying_bernoulli_masks(4, 3, 0.7, as_generator(0))
        >>> int(torch.linalg.matrix_rank(torch.cat([torch.ones(4, 1), masks.double()], 1)))
        4
    """
    masks = bernoulli_masks(rows, positions, p, generator)
    for _ in range(attempts - 1):
        design = torch.cat([torch.ones(rows, 1, dtype=torch.float64), masks.to(torch.float64)], 1)
        if int(torch.linalg.matrix_rank(design)) == positions + 1:
            break
        masks = bernoulli_masks(rows, positions, p, generator)
    return masks


# ------------------------------------------------------------------ splits of a budget


def minimum_cross_modal_samples(positions_a: int, positions_b: int) -> int:
    """``(S + 1) * (P + 1)``: the fewest masked pairs that identify an ``S x P`` bilinear
    surrogate with cross-modal sampling (a Kronecker design needs ``S + 1`` and ``P + 1``
    masks per side)."""
    return (positions_a + 1) * (positions_b + 1)


def split_samples(n_samples: int, positions_a: int, positions_b: int) -> Tuple[int, int]:
    """``(m_a, m_b)`` masks per side for InteractionLIME: ``m_a * m_b >= n_samples``,
    ``m_a / m_b`` close to ``(S+1) / (P+1)``, and ``m_a >= S+1``, ``m_b >= P+1`` so that
    the bilinear surrogate (a Kronecker-product design) can be identified.

    Raises:
        ValueError: if ``n_samples < (S+1)(P+1)``.

    Example:
        >>> split_samples(1000, 12, 50)
        (16, 63)
    """
    need_a, need_b = positions_a + 1, positions_b + 1
    if n_samples < minimum_cross_modal_samples(positions_a, positions_b):
        raise ValueError(
            f"n_samples: {n_samples} masked pairs cannot identify a {positions_a} x {positions_b} "
            f"interaction matrix with cross-modal sampling (each side needs at least its positions + 1 "
            f"masks); need n_samples >= {need_a * need_b} = ({positions_a} + 1) x ({positions_b} + 1)"
        )
    m_a = max(need_a, math.ceil(math.sqrt(n_samples * need_a / need_b)))
    m_b = max(need_b, math.ceil(n_samples / m_a))
    return m_a, m_b


def _power_set_size(players: int) -> Union[int, float]:
    return 2**players if players < 1024 else math.inf


def split_budget(budget: int, basis_a: int, basis_b: int, players_a: int, players_b: int, terms: str) -> Tuple[int, int]:
    """``(m_a, m_b)`` coalitions per side for the weighted Banzhaf fit: ``m_a * m_b <=
    budget``, ``m_a / m_b`` close to ``basis_a / basis_b`` (the sides' numbers of basis
    functions), ``m_a >= basis_a`` and ``m_b >= basis_b`` (identifiability), and neither
    side above its power set ``2^players`` (what one side cannot use goes to the other).

    Raises:
        ValueError: if ``budget < basis_a * basis_b``, naming ``terms``.

    Example:
        >>> split_budget(2**14, 13, 51, 12, 50, "first-order and cross-modal terms")
        (64, 256)
    """
    if budget < basis_a * basis_b:
        raise ValueError(
            f"budget: {budget} game values cannot identify {terms}: side a needs at least {basis_a} "
            f"coalitions and side b at least {basis_b} (one per basis function), so the budget must be "
            f">= {basis_a * basis_b} = {basis_a} x {basis_b}"
        )
    cap_a, cap_b = _power_set_size(players_a), _power_set_size(players_b)
    m_a = int(math.floor(math.sqrt(budget * basis_a / basis_b)))
    m_a = int(min(max(m_a, basis_a), budget // basis_b, cap_a))
    m_b = int(min(budget // m_a, cap_b))
    m_a = int(min(budget // m_b, cap_a))  # side b capped by its power set: side a takes the rest
    return m_a, m_b


# -------------------------------------------------------- p-weighted distinct coalitions


@dataclass
class WeightedCoalitions:
    """Distinct coalitions of one side with weights representing the ``p``-biased measure.

    Attributes:
        masks: bool ``(m, n_players)``, distinct rows.
        weights: float64 ``(m,)``, summing to 1: a coalition of an enumerated size carries
            its probability ``p^k (1-p)^(n-k)``; sampled coalitions share the remaining
            probability mass in proportion to how often they were drawn.
        exhaustive: whether every coalition of the ``n_players`` is present.
        enumerated_sizes: the coalition sizes whose coalitions are all present with
            their exact probabilities (every size when ``exhaustive``).
    """

    masks: Tensor
    weights: Tensor
    exhaustive: bool
    enumerated_sizes: Tuple[int, ...]


def _log_size_masses(n_players: int, p: float) -> List[float]:
    """``log(C(n, k) p^k (1-p)^(n-k))`` for ``k = 0..n``."""
    log_p, log_q = math.log(p), math.log1p(-p)
    return [
        math.lgamma(n_players + 1) - math.lgamma(k + 1) - math.lgamma(n_players - k + 1) + k * log_p + (n_players - k) * log_q
        for k in range(n_players + 1)
    ]


def _all_coalitions(n_players: int) -> Tensor:
    codes = torch.arange(2**n_players).unsqueeze(1)
    return (codes >> torch.arange(n_players)) & 1 == 1


def _coalitions_of_size(n_players: int, size: int) -> Tensor:
    masks = torch.zeros(math.comb(n_players, size), n_players, dtype=torch.bool)
    for row, members in enumerate(itertools.combinations(range(n_players), size)):
        masks[row, list(members)] = True
    return masks


def _sample_distinct(
    n_players: int, sizes: List[int], size_probabilities: Tensor, count: int, generator: torch.Generator
) -> Tuple[Tensor, Tensor, int]:
    """Draws coalitions (size ~ ``size_probabilities``, then uniform within the size) with
    replacement until ``count`` distinct ones are found; returns them, their numbers of
    draws, and the total number of draws."""
    found: Dict[bytes, int] = {}
    rows: List[Tensor] = []
    draws = 0
    size_table = torch.tensor(sizes)
    while len(rows) < count:
        batch = max(2 * (count - len(rows)), 16)
        drawn_sizes = size_table[torch.multinomial(size_probabilities, batch, replacement=True, generator=generator)]
        ranks = torch.rand(batch, n_players, generator=generator).argsort(1).argsort(1)
        masks = ranks < drawn_sizes.unsqueeze(1)
        for mask in masks:
            draws += 1
            key = mask.numpy().tobytes()
            if key in found:
                found[key] += 1
            else:
                found[key] = 1
                rows.append(mask)
                if len(rows) == count:
                    break
    counts = torch.tensor([found[row.numpy().tobytes()] for row in rows], dtype=torch.float64)
    return torch.stack(rows), counts, draws


def weighted_coalitions(n_players: int, count: int, p: float, generator: torch.Generator) -> WeightedCoalitions:
    """``count`` distinct coalitions of ``n_players`` representing ``p^|M| (1-p)^(n-|M|)``.

    If ``count >= 2^n_players`` all coalitions are returned with their exact probabilities.
    Otherwise the border trick: a coalition size ``k`` whose expected number of draws
    (the remaining count times the size's share of the remaining probability mass) reaches
    the number ``C(n, k)`` of coalitions of that size is enumerated, each coalition
    weighted by its probability; this repeats until no further size qualifies. The rest of
    the count is drawn (with replacement, until that many distinct coalitions are found)
    from the remaining sizes in proportion to their mass, uniformly within a size; the
    drawn coalitions share the remaining mass in proportion to their numbers of draws.

    Example:
        >>> design = weighted_coalitions(3, 8, 0.5, as_generator(0))  # the power set
        >>> design.masks.shape, round(float(design.weights.sum()), 12), design.exhaustive
        (torch.Size([8, 3]), 1.0, True)
        >>> design = weighted_coalitions(10, 100, 0.2, as_generator(0))  # sizes 0 and 1 enumerated
        >>> design.masks.shape, int((design.masks.sum(1) <= 1).sum()), round(float(design.weights.sum()), 12)
        (torch.Size([100, 10]), 11, 1.0)
    """
    log_p, log_q = math.log(p), math.log1p(-p)
    if count >= _power_set_size(n_players):
        masks = _all_coalitions(n_players)
        sizes = masks.sum(1).to(torch.float64)
        return WeightedCoalitions(masks, torch.exp(sizes * log_p + (n_players - sizes) * log_q), True, tuple(range(n_players + 1)))
    log_masses = _log_size_masses(n_players, p)
    to_sample = list(range(n_players + 1))
    enumerated: List[int] = []
    remaining = count
    while to_sample:
        total = sum(math.exp(log_masses[k]) for k in to_sample)
        covered = [k for k in to_sample if remaining * math.exp(log_masses[k]) / total >= math.comb(n_players, k)]
        if not covered:
            break
        for k in covered:
            to_sample.remove(k)
            enumerated.append(k)
            remaining -= math.comb(n_players, k)
    parts: List[Tensor] = []
    weights: List[Tensor] = []
    for k in sorted(enumerated):
        parts.append(_coalitions_of_size(n_players, k))
        weights.append(torch.full((math.comb(n_players, k),), math.exp(k * log_p + (n_players - k) * log_q), dtype=torch.float64))
    if remaining > 0:
        sampled_mass = torch.tensor([math.exp(log_masses[k]) for k in to_sample], dtype=torch.float64)
        masks, draws_per_coalition, draws = _sample_distinct(
            n_players, to_sample, sampled_mass / sampled_mass.sum(), remaining, generator
        )
        parts.append(masks)
        weights.append(float(sampled_mass.sum()) * draws_per_coalition / draws)
    return WeightedCoalitions(torch.cat(parts), torch.cat(weights), False, tuple(sorted(enumerated)))


def identifying_weighted_coalitions(
    n_players: int, count: int, p: float, generator: torch.Generator, with_pairs: bool, attempts: int = 100
) -> Tuple[WeightedCoalitions, Tensor]:
    """:func:`weighted_coalitions` and their :func:`coalition_basis`, redrawn (up to
    ``attempts`` times) until the weighted Gram matrix of the basis is positive definite,
    i.e. the coalitions identify every term (an enumerated power set always does).

    Example:
        >>> design, basis = identifying_weighted_coalitions(5, 12, 0.5, as_generator(0), with_pairs=False)
        >>> design.masks.shape, basis.shape
        (torch.Size([12, 5]), torch.Size([12, 6]))
    """
    for _ in range(attempts):
        design = weighted_coalitions(n_players, count, p, generator)
        basis = coalition_basis(design.masks, with_pairs)
        gram = basis.T @ (design.weights.unsqueeze(1) * basis)
        if design.exhaustive or int(torch.linalg.cholesky_ex(gram).info) == 0:
            break
    return design, basis


# ----------------------------------------------------------------- basis functions


def pair_indices(n_players: int) -> Tensor:
    """``(2, n (n-1) / 2)``: the pairs ``i < j`` in row-major order."""
    return torch.triu_indices(n_players, n_players, offset=1)


def coalition_basis(masks: Tensor, with_pairs: bool) -> Tensor:
    """float64 ``(m, K)`` rows ``[1, x_1..x_n]`` (and ``x_i x_j`` for the pairs of
    :func:`pair_indices` with ``with_pairs``) of the coalitions ``masks`` ``(m, n)``.

    Example:
        >>> coalition_basis(torch.tensor([[True, False, True]]), with_pairs=True)
        tensor([[1., 1., 0., 1., 0., 1., 0.]], dtype=torch.float64)
    """
    x = masks.to(torch.float64)
    columns = [torch.ones(x.shape[0], 1, dtype=torch.float64), x]
    if with_pairs:
        first, second = pair_indices(x.shape[1])
        columns.append(x[:, first] * x[:, second])
    return torch.cat(columns, 1)
