"""p-faithfulness (FIxLIP, Baniecki et al. 2025): how well an explanation, read as a
2-additive game, predicts the model's game on random coalitions.

The explanation is an :class:`~captum_bilinear.InteractionTerms` over the positions of
both sides; the game's players are some of those positions: a game with ``positions_a``
and ``positions_b`` (such as :class:`~captum_bilinear.metrics.PairMaskingGame` or
:class:`~captum_bilinear.games.LayerMaskingGame`) says which, a game with exactly
``S + P`` players has every position as a player. Positions that are no player of the
game are present in every coalition. The explanation's prediction of a coalition ``M``
is ``e_0 + Σ_{i∈M} e_i + Σ_{{i,j}⊆M} e_ij`` (:meth:`~captum_bilinear.InteractionTerms.predict`);
a method without an intercept (``has_intercept`` False) is given ``ν(∅)``, and
``interactions_only`` scores the pair terms alone (``ν(∅)`` plus the present pairs).
"""

from dataclasses import dataclass, replace
from typing import Any, Optional, Tuple

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
from captum_bilinear._utils.coalitions import RandomState, as_generator, bernoulli_masks
from captum_bilinear.terms import InteractionTerms



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


def game_positions(game: Any, explanation: InteractionTerms) -> Tensor:
    """LongTensor ``(n_players,)``: the explanation position (side a's positions, then
    side b's) of each of the game's players.

    Example:
        >>> class Game:
        ...     n_players, positions_a, positions_b = 3, torch.tensor([1]), torch.tensor([1, 2])
        >>> terms = InteractionTerms(torch.zeros(1), torch.zeros(1, 3), torch.zeros(1, 3), torch.zeros(1, 3, 3))
        >>> game_positions(Game(), terms)
        tensor([1, 4, 5])
    """
    if not isinstance(explanation, InteractionTerms):
        raise TypeError(f"explanation: expected InteractionTerms (what attribute_terms returns), got "
                        f"{type(explanation).__name__}")
    positions_a, positions_b = explanation.positions
    n_players = check_int(getattr(game, "n_players", None), "game.n_players", minimum=1)
    if hasattr(game, "positions_a") and hasattr(game, "positions_b"):
        side_a = torch.as_tensor(game.positions_a, dtype=torch.long).reshape(-1).cpu()
        side_b = torch.as_tensor(game.positions_b, dtype=torch.long).reshape(-1).cpu()
        if side_a.numel() + side_b.numel() != n_players:
            raise ValueError(f"game: positions_a and positions_b name {side_a.numel() + side_b.numel()} players, "
                             f"n_players is {n_players}")
        if (side_a.numel() and (side_a.min() < 0 or side_a.max() >= positions_a)) or (
                side_b.numel() and (side_b.min() < 0 or side_b.max() >= positions_b)):
            raise ValueError(f"game: its players' positions lie outside the explanation's {positions_a} x "
                             f"{positions_b} positions")
        return torch.cat([side_a, positions_a + side_b])
    if n_players != positions_a + positions_b:
        raise ValueError(
            f"game: {n_players} players, but the explanation has {positions_a} + {positions_b} positions; give the "
            "game positions_a / positions_b (the explanation positions of its players)"
        )
    return torch.arange(n_players)


def explanation_prediction(
    explanation: InteractionTerms,
    game: Any,
    coalitions: Tensor,
    *,
    index: int = 0,
    interactions_only: bool = False,
    empty_value: Optional[float] = None,
) -> Tensor:
    """The explanation's value of each of the game's coalitions.

    Args:
        explanation: :class:`~captum_bilinear.InteractionTerms`.
        game: the game whose players ``coalitions`` are over (see :func:`game_positions`).
        coalitions: bool ``(m, game.n_players)``, True = present.
        index: the example of the explanation.
        interactions_only: predict with ``empty_value`` and the pair terms alone.
        empty_value: ``ν(∅)``, used for explanations without an intercept and with
            ``interactions_only`` (default: computed from the game).

    Returns:
        float64 ``(m,)``.

    Example:
        >>> terms = InteractionTerms(torch.tensor([1.0]), torch.tensor([[2.0]]), torch.tensor([[3.0]]),
        ...                          torch.tensor([[[4.0]]]))
        >>> game = lambda M: M.double().sum(1); game.n_players = 2
        >>> explanation_prediction(terms, game, torch.tensor([[True, True], [True, False]]))
        tensor([10.,  3.], dtype=torch.float64)
        >>> explanation_prediction(terms, game, torch.tensor([[True, True]]), interactions_only=True, empty_value=0.0)
        tensor([4.], dtype=torch.float64)
    """
    masks = as_bool_mask(coalitions, "coalitions")
    players = game_positions(game, explanation)
    if masks.dim() != 2 or masks.shape[1] != players.numel():
        raise ValueError(f"coalitions: expected shape (m, {players.numel()}), got {tuple(masks.shape)}")
    one = explanation[index]
    if interactions_only or not one.has_intercept:
        if empty_value is None:
            empty_value = float(call_batched(game, torch.zeros(1, players.numel(), dtype=torch.bool), None, "game")[0])
        one = replace(one, intercept=torch.full_like(one.intercept, check_real(empty_value, "empty_value")))
    if interactions_only:
        one = replace(one, first_a=torch.zeros_like(one.first_a), first_b=torch.zeros_like(one.first_b))
    positions = torch.ones(masks.shape[0], sum(explanation.positions), dtype=torch.bool)
    positions[:, players] = masks.cpu()
    return one.predict(positions)


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
    return bernoulli_masks(n_coalitions, n_players, p, as_generator(random_state))


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


def faithfulness_scores(coalitions: Tensor, game_values: Tensor, predictions: Tensor) -> FaithfulnessResult:
    """The statistics of predictions of game values (what :func:`p_faithfulness` returns),
    for callers that score several explanations on the same coalitions.

    Example:
        >>> result = faithfulness_scores(torch.ones(3, 1, dtype=torch.bool), torch.tensor([1.0, 2.0, 3.0]),
        ...                              torch.tensor([1.0, 2.0, 4.0]))
        >>> round(result.spearman, 6), round(result.r2, 6)
        (1.0, 0.5)
    """
    values = as_tensor(game_values, "game_values", torch.float64).cpu()
    predicted = as_tensor(predictions, "predictions", torch.float64).cpu()
    return FaithfulnessResult(
        spearman=spearman(values, predicted), r2=r_squared(values, predicted), pearson=pearson(values, predicted),
        coalitions=coalitions, game_values=values, predictions=predicted,
    )


class SampledGame:
    """A game played once on coalitions drawn with inclusion probability ``p`` (and on
    the empty coalition when an explanation first needs ``ν(∅)``): the sample
    p-faithfulness scores explanations on. Every
    explanation scored on one sample (the methods of a comparison, or one method's terms
    read two ways) is scored on the same coalitions at no further cost -- the result
    :func:`p_faithfulness` gives with the same arguments, which plays the game anew at
    each call.

    The values are the game's when the sample was drawn: after changing the model, draw
    a new sample.

    Args:
        game: ``game(coalitions) -> values``, bool ``(m, n_players)`` to ``(m,)``, with
            ``n_players`` (see :func:`p_faithfulness`).
        p: inclusion probability in ``(0, 1)``.
        n_coalitions: number of sampled coalitions (>= 2).
        random_state: int seed (default 0), ``torch.Generator`` or ``None``.
        batch_size: most coalitions per ``game`` call (default: all at once).

    Attributes:
        game: the game.
        coalitions: bool ``(n_coalitions, n_players)``.
        values: float64 ``(n_coalitions,)``, ``ν(M)`` of each coalition.

    Example:
        >>> game = lambda M: 1.0 + M.double() @ torch.tensor([1.0, -2.0, 0.5]).double() \\
        ...     + 3.0 * (M[:, 0] & M[:, 2]).double()
        >>> game.n_players = 3
        >>> exact = InteractionTerms(torch.tensor([1.0]), torch.tensor([[1.0]]), torch.tensor([[-2.0, 0.5]]),
        ...                          torch.tensor([[[0.0, 3.0]]]))
        >>> sample = SampledGame(game, p=0.5, n_coalitions=64, random_state=0)
        >>> round(sample.p_faithfulness(exact).spearman, 6)
        1.0
        >>> sample.p_faithfulness(exact).spearman == p_faithfulness(game, exact, n_coalitions=64).spearman
        True
    """

    def __init__(self, game: Any, *, p: float = 0.5, n_coalitions: int = 1000, random_state: RandomState = 0,
                 batch_size: Optional[int] = None) -> None:
        n_players = check_int(getattr(game, "n_players", None), "game.n_players", minimum=1)
        n_coalitions = check_int(n_coalitions, "n_coalitions", minimum=2)
        self.game = game
        self.coalitions = sample_coalitions(n_players, n_coalitions, p, random_state)
        self.values = as_tensor(call_batched(game, self.coalitions, batch_size, "game"), "game values",
                                torch.float64).cpu()
        self._empty_value: Optional[float] = None

    @property
    def empty_value(self) -> float:
        """``ν(∅)``, played when first read (what an explanation without an intercept
        and ``interactions_only`` predict from)."""
        if self._empty_value is None:
            empty = torch.zeros(1, self.coalitions.shape[1], dtype=torch.bool)
            self._empty_value = float(call_batched(self.game, empty, None, "game")[0])
        return self._empty_value

    def predictions(self, explanation: InteractionTerms, *, index: int = 0,
                    interactions_only: bool = False) -> Tensor:
        """The explanation's value of each coalition (see :func:`explanation_prediction`)."""
        needs_empty = interactions_only or not getattr(explanation, "has_intercept", True)
        return explanation_prediction(explanation, self.game, self.coalitions, index=index,
                                      interactions_only=interactions_only,
                                      empty_value=self.empty_value if needs_empty else None)

    def p_faithfulness(self, explanation: InteractionTerms, *, index: int = 0,
                       interactions_only: bool = False) -> FaithfulnessResult:
        """p-faithfulness of example ``index`` of ``explanation`` on this sample
        (``interactions_only``: the pair terms alone, from ``ν(∅)``)."""
        predictions = self.predictions(explanation, index=index, interactions_only=interactions_only)
        return faithfulness_scores(self.coalitions, self.values, predictions)


def p_faithfulness(
    game: Any,
    explanation: InteractionTerms,
    *,
    index: int = 0,
    p: float = 0.5,
    n_coalitions: int = 1000,
    random_state: RandomState = 0,
    batch_size: Optional[int] = None,
    interactions_only: bool = False,
) -> FaithfulnessResult:
    """p-faithfulness: agreement of the game ``ν(M)`` and the explanation's prediction
    over coalitions ``M`` drawn with inclusion probability ``p``.

    Spearman and Pearson ignore the intercept; R² does not (it is computed without
    refitting). An explanation without an intercept (``has_intercept`` False) predicts
    from ``ν(∅)``. Each call plays the game on its coalitions; to score several
    explanations of one pair, play it once with :class:`SampledGame`.

    Args:
        game: ``game(coalitions) -> values``, bool ``(m, n_players)`` to ``(m,)``, with
            ``n_players`` (and ``positions_a`` / ``positions_b`` unless every explanation
            position is a player); see :class:`~captum_bilinear.metrics.PairMaskingGame`.
        explanation: :class:`~captum_bilinear.InteractionTerms` of any method.
        index: the example of the explanation.
        p: inclusion probability in ``(0, 1)``.
        n_coalitions: number of sampled coalitions (>= 2).
        random_state: int seed (default 0), ``torch.Generator`` or ``None``.
        batch_size: most coalitions per ``game`` call (default: all at once).
        interactions_only: score the pair terms alone (``ν(∅)`` plus the present pairs).

    Returns:
        :class:`FaithfulnessResult`.

    Example:
        >>> # a 2-additive game of a 1 x 2 pair and its exact coefficients: perfectly faithful
        >>> game = lambda M: 1.0 + M.double() @ torch.tensor([1.0, -2.0, 0.5]).double() \\
        ...     + 3.0 * (M[:, 0] & M[:, 2]).double()
        >>> game.n_players = 3
        >>> terms = InteractionTerms(torch.tensor([1.0]), torch.tensor([[1.0]]), torch.tensor([[-2.0, 0.5]]),
        ...                          torch.tensor([[[0.0, 3.0]]]))
        >>> result = p_faithfulness(game, terms, p=0.5, n_coalitions=64, random_state=0)
        >>> round(result.spearman, 6), round(result.r2, 6)
        (1.0, 1.0)
    """
    game_positions(game, explanation)  # a game of other players is refused before it is played
    sample = SampledGame(game, p=p, n_coalitions=n_coalitions, random_state=random_state, batch_size=batch_size)
    return sample.p_faithfulness(explanation, index=index, interactions_only=interactions_only)
