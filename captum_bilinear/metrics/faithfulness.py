"""p-faithfulness (FIxLIP, Baniecki et al. 2025): how well an explanation, read as a
2-additive game, predicts the model's game on random coalitions.

Players are the positions of both inputs, side a first: ``0 .. n_a-1`` caption
positions, ``n_a .. n_a+n_b-1`` image positions. An explanation is

* ``intercept`` ``e_0`` (a number),
* ``first_order`` ``e_i``, shape ``(n_players,)``, or ``None`` for methods without
  first-order terms (BII, InteractionCAM, ...: their prediction is built from the
  interactions alone),
* ``pairwise`` ``e_ij``, a square ``(n_players, n_players)`` matrix that is either
  symmetric or strictly upper-triangular (zero diagonal in both cases). Each unordered
  pair ``{i, j}`` counts once. :func:`cross_modal_explanation` builds it from an
  interaction tensor's cross block.

Its prediction for a coalition ``M`` is ``e_0 + Σ_{i∈M} e_i + Σ_{i<j, i,j∈M} e_ij``.
"""

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple, Union

import torch
from torch import Tensor

from captum_bilinear._utils.checks import (
    as_bool_mask,
    as_tensor,
    call_batched,
    check_int,
    check_probability,
    check_real,
)

GameFn = Callable[[Tensor], Tensor]
RandomState = Union[int, torch.Generator, None]


# ------------------------------------------------------------------------ statistics


def rankdata(values: Tensor) -> Tensor:
    """Ranks ``1..n`` of a 1-D tensor, ties getting the average of their ranks (as
    ``scipy.stats.rankdata(method="average")``).

    Example:
        >>> rankdata(torch.tensor([10.0, 20.0, 10.0, 5.0]))
        tensor([2.5000, 4.0000, 2.5000, 1.0000], dtype=torch.float64)
    """
    tensor = as_tensor(values, "values", torch.float64).cpu()
    if tensor.dim() != 1:
        raise ValueError(f"values: expected a 1-D tensor, got shape {tuple(tensor.shape)}")
    ordered, order = torch.sort(tensor, stable=True)
    _, group, counts = torch.unique_consecutive(ordered, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)
    average = ends - (counts.to(torch.float64) - 1) / 2
    ranks = torch.empty_like(tensor)
    ranks[order] = average[group]
    return ranks


def _pair(x: Any, y: Any, x_name: str, y_name: str) -> Tuple[Tensor, Tensor]:
    first = as_tensor(x, x_name, torch.float64).cpu()
    second = as_tensor(y, y_name, torch.float64).cpu()
    if first.dim() != 1 or first.shape != second.shape:
        raise ValueError(
            f"{x_name}, {y_name}: expected two 1-D tensors of the same length, got shapes "
            f"{tuple(first.shape)} and {tuple(second.shape)}"
        )
    if first.numel() < 2:
        raise ValueError(f"{x_name}: expected at least 2 values, got {first.numel()}")
    return first, second


def pearson(x: Tensor, y: Tensor) -> float:
    """Pearson correlation of two 1-D tensors (``nan`` if either is constant).

    Example:
        >>> pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 7.0]))
        0.9933992677987828
    """
    first, second = _pair(x, y, "x", "y")
    first, second = first - first.mean(), second - second.mean()
    denominator = torch.sqrt((first * first).sum() * (second * second).sum())
    return float((first * second).sum() / denominator) if denominator > 0 else float("nan")


def spearman(x: Tensor, y: Tensor) -> float:
    """Spearman rank correlation: the Pearson correlation of the average-tie ranks
    (``nan`` if either input is constant).

    Example:
        >>> spearman(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 3.0, 2.0, 4.0]))
        0.8
    """
    first, second = _pair(x, y, "x", "y")
    return pearson(rankdata(first), rankdata(second))


def r_squared(target: Tensor, prediction: Tensor) -> float:
    """Coefficient of determination of ``prediction`` for ``target``:
    ``1 - Σ(target - prediction)² / Σ(target - mean(target))²``; no refitting, so it is
    1 only for exact predictions and can be negative (``nan`` for a constant target).

    Example:
        >>> r_squared(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0]))
        0.5
    """
    first, second = _pair(target, prediction, "target", "prediction")
    total = ((first - first.mean()) ** 2).sum()
    residual = ((first - second) ** 2).sum()
    return float(1 - residual / total) if total > 0 else float("nan")


# ---------------------------------------------------------------------- explanations


def _pairwise(pairwise: Any, n_players: Optional[int], name: str = "pairwise") -> Tensor:
    """A symmetric or strictly upper-triangular matrix as its strict upper triangle."""
    matrix = as_tensor(pairwise, name, torch.float64)
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name}: expected a square (n_players, n_players) matrix, got {tuple(matrix.shape)}")
    if n_players is not None and matrix.shape[0] != n_players:
        raise ValueError(f"{name}: expected ({n_players}, {n_players}) to match the players, got {tuple(matrix.shape)}")
    if bool((torch.diagonal(matrix) != 0).any()):
        raise ValueError(f"{name}: the diagonal must be zero (put single-player terms in first_order)")
    upper = torch.triu(matrix, 1)
    if bool((torch.tril(matrix, -1) != 0).any()) and not torch.allclose(matrix, matrix.T):
        raise ValueError(f"{name}: expected a symmetric or an upper-triangular matrix (each pair once)")
    return upper


def cross_modal_explanation(
    cross: Tensor,
    first_a: Optional[Tensor] = None,
    first_b: Optional[Tensor] = None,
    intra_a: Optional[Tensor] = None,
    intra_b: Optional[Tensor] = None,
) -> Tuple[Optional[Tensor], Tensor]:
    """An explanation over the players ``[side a positions, side b positions]`` from
    its blocks.

    Args:
        cross: ``(n_a, n_b)`` caption-image interactions, e.g. ``A[0]`` (drop positions
            that are not players, such as CLS: ``A[0][:, 1:]``).
        first_a, first_b: ``(n_a,)``, ``(n_b,)`` first-order terms; a missing one is zero.
        intra_a, intra_b: ``(n_a, n_a)``, ``(n_b, n_b)`` intra-modal interactions,
            symmetric or strictly upper-triangular.

    Returns:
        ``(first_order, pairwise)``: ``(n_a + n_b,)`` float64, or ``None`` when neither
        side has first-order terms, and the strictly upper-triangular float64
        ``(n_a + n_b, n_a + n_b)`` matrix.

    Example:
        >>> first, pairwise = cross_modal_explanation(torch.tensor([[1.0, 2.0]]))
        >>> first is None
        True
        >>> pairwise
        tensor([[0., 1., 2.],
                [0., 0., 0.],
                [0., 0., 0.]], dtype=torch.float64)
    """
    block = as_tensor(cross, "cross", torch.float64)
    if block.dim() != 2:
        raise ValueError(f"cross: expected shape (n_a, n_b), got {tuple(block.shape)}")
    n_a, n_b = block.shape
    pairwise = torch.zeros(n_a + n_b, n_a + n_b, dtype=torch.float64, device=block.device)
    pairwise[:n_a, n_a:] = block
    if intra_a is not None:
        pairwise[:n_a, :n_a] = _pairwise(intra_a, n_a, "intra_a").to(block.device)
    if intra_b is not None:
        pairwise[n_a:, n_a:] = _pairwise(intra_b, n_b, "intra_b").to(block.device)
    if first_a is None and first_b is None:
        return None, pairwise
    parts = []
    for value, size, name in ((first_a, n_a, "first_a"), (first_b, n_b, "first_b")):
        if value is None:
            parts.append(torch.zeros(size, dtype=torch.float64, device=block.device))
            continue
        tensor = as_tensor(value, name, torch.float64).to(block.device)
        if tuple(tensor.shape) != (size,):
            raise ValueError(f"{name}: expected shape ({size},) to match cross, got {tuple(tensor.shape)}")
        parts.append(tensor)
    return torch.cat(parts), pairwise


def _explanation(
    intercept: Any, first_order: Any, pairwise: Any
) -> Tuple[float, Optional[Tensor], Optional[Tensor], int]:
    e0 = 0.0 if intercept is None else check_real(intercept, "intercept")
    if first_order is None and pairwise is None:
        raise ValueError("first_order, pairwise: an explanation needs at least one of them")
    first = None
    n_players = None
    if first_order is not None:
        first = as_tensor(first_order, "first_order", torch.float64).cpu()
        if first.dim() != 1 or first.numel() == 0:
            raise ValueError(f"first_order: expected shape (n_players,), got {tuple(first.shape)}")
        n_players = first.numel()
    upper = None if pairwise is None else _pairwise(pairwise, n_players).cpu()
    if n_players is None:
        n_players = upper.shape[0]
    return e0, first, upper, n_players


def explanation_prediction(
    coalitions: Tensor,
    intercept: Optional[float] = 0.0,
    first_order: Optional[Tensor] = None,
    pairwise: Optional[Tensor] = None,
) -> Tensor:
    """The explanation's value ``e_0 + Σ_{i∈M} e_i + Σ_{i<j∈M} e_ij`` of each coalition.

    Args:
        coalitions: bool ``(m, n_players)``, ``True`` = player present.
        intercept: ``e_0`` (``None`` = 0).
        first_order: ``(n_players,)`` or ``None``.
        pairwise: ``(n_players, n_players)``, symmetric or strictly upper-triangular, or ``None``.

    Returns:
        float64 ``(m,)``.

    Example:
        >>> pairwise = torch.tensor([[0.0, 2.0], [2.0, 0.0]])   # symmetric: the pair counts once
        >>> explanation_prediction(torch.tensor([[True, True], [True, False]]), 1.0,
        ...                        torch.tensor([0.5, 0.25]), pairwise)
        tensor([3.7500, 1.5000], dtype=torch.float64)
    """
    e0, first, upper, n_players = _explanation(intercept, first_order, pairwise)
    masks = as_bool_mask(coalitions, "coalitions")
    if masks.dim() != 2 or masks.shape[1] != n_players:
        raise ValueError(f"coalitions: expected shape (m, {n_players}), got {tuple(masks.shape)}")
    present = masks.cpu().to(torch.float64)
    prediction = torch.full((present.shape[0],), e0, dtype=torch.float64)
    if first is not None:
        prediction = prediction + present @ first
    if upper is not None:
        prediction = prediction + ((present @ upper) * present).sum(1)
    return prediction


def _generator(random_state: RandomState) -> torch.Generator:
    if isinstance(random_state, torch.Generator):
        return random_state
    generator = torch.Generator()
    if random_state is None:
        generator.seed()
    else:
        generator.manual_seed(check_int(random_state, "random_state", minimum=0))
    return generator


def sample_coalitions(n_players: int, n_coalitions: int, p: float = 0.5, random_state: RandomState = 0) -> Tensor:
    """``n_coalitions`` coalitions, each player present independently with probability ``p``.

    Args:
        n_players: number of players.
        n_coalitions: number of coalitions.
        p: inclusion probability in ``(0, 1)``.
        random_state: an int seed (default 0: reproducible), a ``torch.Generator``, or
            ``None`` for a fresh random seed.

    Returns:
        bool ``(n_coalitions, n_players)``.

    Example:
        >>> sample_coalitions(3, 2, p=0.5, random_state=0).shape
        torch.Size([2, 3])
    """
    n_players = check_int(n_players, "n_players", minimum=1)
    n_coalitions = check_int(n_coalitions, "n_coalitions", minimum=1)
    p = check_probability(p, "p")
    return torch.rand(n_coalitions, n_players, generator=_generator(random_state), dtype=torch.float64) < p


@dataclass(frozen=True)
class FaithfulnessResult:
    """p-faithfulness of one explanation.

    Attributes:
        spearman: rank correlation of ``game_values`` and ``predictions``.
        r2: ``1 - SS_res / SS_tot`` of ``predictions`` for ``game_values`` (no refit).
        pearson: linear correlation (invariant to the intercept and to scale).
        coalitions: bool ``(n_coalitions, n_players)``, the sampled coalitions.
        game_values: float64 ``(n_coalitions,)``, ``ν(M)``.
        predictions: float64 ``(n_coalitions,)``, the explanation's values.
    """

    spearman: float
    r2: float
    pearson: float
    coalitions: Tensor
    game_values: Tensor
    predictions: Tensor


def p_faithfulness(
    game_fn: GameFn,
    intercept: Optional[float],
    first_order: Optional[Tensor],
    pairwise: Optional[Tensor],
    p: float = 0.5,
    n_coalitions: int = 1000,
    random_state: RandomState = 0,
    batch_size: Optional[int] = None,
) -> FaithfulnessResult:
    """p-faithfulness: agreement of the game ``ν(M)`` and the explanation's prediction
    over coalitions ``M`` drawn with inclusion probability ``p``.

    Spearman and Pearson ignore ``intercept``; R² does not (it is computed without
    refitting). For a method without an intercept (BII, whose interactions sum to the
    four-term identity rather than to ``ν``), pass ``intercept=ν(∅)`` or compare by
    Spearman; ``None`` means 0.

    Args:
        game_fn: ``game_fn(coalitions) -> values``, bool ``(m, n_players)`` to ``(m,)``.
            See :class:`~captum_bilinear.metrics.PairMaskingGame`.
        intercept: ``e_0`` (``None`` = 0).
        first_order: ``(n_players,)``, or ``None`` for interaction-only methods.
        pairwise: ``(n_players, n_players)``, symmetric or strictly upper-triangular
            (:func:`cross_modal_explanation`), or ``None`` for first-order methods.
        p: inclusion probability in ``(0, 1)``.
        n_coalitions: number of sampled coalitions (>= 2).
        random_state: int seed (default 0), ``torch.Generator`` or ``None``.
        batch_size: most coalitions per ``game_fn`` call (default: all at once).

    Returns:
        :class:`FaithfulnessResult`.

    Example:
        >>> # a 2-additive game and its exact coefficients: perfectly faithful
        >>> game = lambda M: 1.0 + M.double() @ torch.tensor([1.0, -2.0, 0.5]).double() \\
        ...     + 3.0 * (M[:, 0] & M[:, 2]).double()
        >>> pairwise = torch.zeros(3, 3); pairwise[0, 2] = 3.0
        >>> result = p_faithfulness(game, 1.0, torch.tensor([1.0, -2.0, 0.5]), pairwise,
        ...                         p=0.5, n_coalitions=64, random_state=0)
        >>> round(result.spearman, 6), round(result.r2, 6)
        (1.0, 1.0)
    """
    e0, first, upper, n_players = _explanation(intercept, first_order, pairwise)
    n_coalitions = check_int(n_coalitions, "n_coalitions", minimum=2)
    coalitions = sample_coalitions(n_players, n_coalitions, p, random_state)
    game_values = call_batched(game_fn, coalitions, batch_size, "game_fn")
    predictions = explanation_prediction(coalitions, e0, first, upper)
    return FaithfulnessResult(
        spearman=spearman(game_values, predictions),
        r2=r_squared(game_values, predictions),
        pearson=pearson(game_values, predictions),
        coalitions=coalitions,
        game_values=game_values,
        predictions=predictions,
    )
