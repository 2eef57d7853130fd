"""p-faithfulness and its statistics against hand-computed values and exact
2-additive games (whose own coefficients must be perfectly faithful)."""

import itertools
import math

import pytest
import torch

from dataclasses import replace

from captum_bilinear import InteractionTerms
from captum_bilinear.metrics import (
    SampledGame,
    explanation_prediction,
    game_positions,
    p_faithfulness,
    pearson,
    r_squared,
    rankdata,
    sample_coalitions,
    spearman,
)

# ------------------------------------------------------------------------ statistics


def test_rankdata_averages_ties():
    assert rankdata(torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0])).tolist() == [3.0, 1.5, 4.0, 1.5, 5.0]
    assert rankdata(torch.tensor([2.0, 2.0, 2.0])).tolist() == [2.0, 2.0, 2.0]


def test_spearman_with_ties_hand_computed():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]; centred dot 4.5, norms² 4.5 and 5
    value = spearman(torch.tensor([1.0, 2.0, 2.0, 3.0]), torch.tensor([1.0, 3.0, 2.0, 4.0]))
    assert value == pytest.approx(math.sqrt(0.9))


def test_spearman_is_rank_based():
    x = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    assert spearman(x, torch.exp(10 * x)) == pytest.approx(1.0)
    assert spearman(x, -x**3) == pytest.approx(-1.0)
    # no ties: 1 - 6 Σd² / (n (n² - 1)) with d = [0, 1, -1, 0, 0] -> 1 - 12 / 120
    assert spearman(x, torch.tensor([1.0, 3.0, 2.0, 4.0, 5.0])) == pytest.approx(0.9)


def test_spearman_matches_scipy():
    import scipy.stats as stats

    generator = torch.Generator().manual_seed(3)
    x = torch.randint(0, 5, (40,), generator=generator).double()  # many ties
    y = x + torch.randint(0, 3, (40,), generator=generator).double()
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x.numpy(), y.numpy()).statistic)


def test_pearson_and_r_squared_hand_computed():
    assert r_squared(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0])) == pytest.approx(0.5)
    # predicting the mean everywhere: 0; worse than the mean: negative
    assert r_squared(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 2.0])) == pytest.approx(0.0)
    assert r_squared(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(-3.0)
    # pearson of (1, 2, 3) and (1, 2, 4): centred (-1, 0, 1), (-4/3, -1/3, 5/3); 3 / sqrt(2 * 14/3)
    assert pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0])) == pytest.approx(3 / math.sqrt(28 / 3))


def test_constant_inputs_give_nan():
    assert math.isnan(spearman(torch.ones(4), torch.arange(4.0)))
    assert math.isnan(r_squared(torch.ones(4), torch.arange(4.0)))


def test_statistics_bad_inputs():
    with pytest.raises(ValueError, match="x, y"):
        spearman(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="x"):
        spearman(torch.ones(1), torch.ones(1))
    with pytest.raises(ValueError, match="values"):
        rankdata(torch.ones(2, 2))


# ------------------------------------------------------------------------ explanations

S, P = 2, 3  # a caption of 2 positions, an image of 3: players 0, 1 | 2, 3, 4


def random_two_additive(seed=0, n=S + P):
    generator = torch.Generator().manual_seed(seed)
    intercept = float(torch.randn(1, generator=generator))
    first = torch.randn(n, generator=generator, dtype=torch.float64)
    pairs = {(i, j): float(torch.randn(1, generator=generator)) for i, j in itertools.combinations(range(n), 2)}
    return intercept, first, pairs


class HandGame:
    """A 2-additive game evaluated coalition by coalition, pair by pair."""

    def __init__(self, intercept, first, pairs, n_players=S + P):
        self.intercept, self.first, self.pairs, self.n_players = intercept, first, pairs, n_players

    def __call__(self, coalitions):
        values = []
        for row in coalitions.tolist():
            value = self.intercept + sum(self.first[i].item() for i in range(len(row)) if row[i])
            value += sum(v for (i, j), v in self.pairs.items() if row[i] and row[j])
            values.append(value)
        return torch.tensor(values, dtype=torch.float64)


def terms_of(intercept, first, pairs, has_intercept=True):
    """The game's own coefficients as InteractionTerms (symmetric intra blocks)."""
    cross = torch.zeros(1, S, P, dtype=torch.float64)
    intra_a = torch.zeros(1, S, S, dtype=torch.float64)
    intra_b = torch.zeros(1, P, P, dtype=torch.float64)
    for (i, j), value in pairs.items():
        if i < S <= j:
            cross[0, i, j - S] = value
        elif j < S:
            intra_a[0, i, j] = intra_a[0, j, i] = value
        else:
            intra_b[0, i - S, j - S] = intra_b[0, j - S, i - S] = value
    return InteractionTerms(torch.tensor([intercept], dtype=torch.float64), first[None, :S], first[None, S:], cross,
                            intra_a=intra_a, intra_b=intra_b, has_intercept=has_intercept)


def test_exact_coefficients_are_perfectly_faithful():
    intercept, first, pairs = random_two_additive()
    result = p_faithfulness(HandGame(intercept, first, pairs), terms_of(intercept, first, pairs), p=0.3,
                            n_coalitions=200, random_state=1)
    assert result.spearman == pytest.approx(1.0)
    assert result.r2 == pytest.approx(1.0)
    assert torch.allclose(result.predictions, result.game_values)


def test_perturbed_explanation_is_less_faithful():
    intercept, first, pairs = random_two_additive()
    game = HandGame(intercept, first, pairs)
    terms = terms_of(intercept, first, pairs)
    generator = torch.Generator().manual_seed(9)
    noisy = replace(terms, cross=terms.cross + torch.randn(1, S, P, generator=generator, dtype=torch.float64))
    result = p_faithfulness(game, noisy, p=0.5, n_coalitions=300, random_state=1)
    assert result.spearman < 0.99 and result.r2 < 0.99
    # the pair terms alone (no first-order terms, no intra pairs' help) are less faithful too
    alone = p_faithfulness(game, terms, p=0.5, n_coalitions=300, random_state=1, interactions_only=True)
    assert alone.r2 < 0.99


def test_intercept_shifts_r2_but_not_the_correlations_and_missing_intercept_is_the_empty_value():
    intercept, first, pairs = random_two_additive()
    game = HandGame(intercept, first, pairs)
    shifted = terms_of(intercept + 3.0, first, pairs)
    result = p_faithfulness(game, shifted, n_coalitions=100, random_state=2)
    assert result.spearman == pytest.approx(1.0) and result.pearson == pytest.approx(1.0)
    assert result.r2 < 0.5
    # without an intercept of its own, the explanation predicts from nu(empty) = the true intercept
    unknown = p_faithfulness(game, terms_of(intercept + 3.0, first, pairs, has_intercept=False), n_coalitions=100,
                             random_state=2)
    assert unknown.r2 == pytest.approx(1.0)


def test_cross_modal_game_with_interactions_only():
    # the game is purely cross-modal: its cross block alone is perfectly faithful
    cross = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], dtype=torch.float64)
    pairs = {(i, S + j): float(cross[i, j]) for i in range(S) for j in range(P)}
    game = HandGame(0.0, torch.zeros(S + P, dtype=torch.float64), pairs)
    terms = InteractionTerms(torch.zeros(1), torch.zeros(1, S), torch.zeros(1, P), cross[None],
                             has_intercept=False, has_first_order=False)
    result = p_faithfulness(game, terms, p=0.5, n_coalitions=100, random_state=0)
    assert result.spearman == pytest.approx(1.0) and result.r2 == pytest.approx(1.0)


def test_a_game_over_some_positions_keeps_the_others_present():
    """Game players are positions 1 (side a) and 0, 2 (side b) of a 3 x 3 explanation; the
    other positions are present in every coalition, so their terms are constant."""
    cross = torch.arange(9.0, dtype=torch.float64).view(1, 3, 3)
    terms = InteractionTerms(torch.zeros(1), torch.zeros(1, 3), torch.zeros(1, 3), cross)

    class Game:
        n_players, positions_a, positions_b = 3, torch.tensor([1]), torch.tensor([0, 2])

        def __call__(self, coalitions):
            return torch.zeros(coalitions.shape[0], dtype=torch.float64)

    coalitions = torch.tensor([[False, False, False], [True, True, False]])
    # absent: a1, b0, b2 -> present a0, a2, b1: pairs (0,1)=1, (2,1)=7; then a1 and b0 present too
    expected = [1.0 + 7.0, 1.0 + 7.0 + 0.0 + 6.0 + 3.0 + 4.0]
    assert explanation_prediction(terms, Game(), coalitions).tolist() == expected
    assert game_positions(Game(), terms).tolist() == [1, 3, 5]


def test_prediction_counts_each_pair_once():
    terms = InteractionTerms(torch.tensor([0.5]), torch.tensor([[1.0]]), torch.tensor([[10.0, 100.0]]),
                             torch.tensor([[[2.0, 3.0]]]), intra_b=torch.tensor([[[0.0, 4.0], [4.0, 0.0]]]))
    coalitions = torch.tensor([[True, False, True], [True, True, True], [False, False, False]])
    assert terms.predict(coalitions).tolist() == [0.5 + 101.0 + 3.0, 0.5 + 111.0 + 5.0 + 4.0, 0.5]


def test_sampling_is_seeded_and_has_inclusion_probability_p():
    first = sample_coalitions(8, 50, p=0.3, random_state=5)
    assert torch.equal(first, sample_coalitions(8, 50, p=0.3, random_state=5))
    assert not torch.equal(first, sample_coalitions(8, 50, p=0.3, random_state=6))
    many = sample_coalitions(10, 20000, p=0.3, random_state=0)
    assert many.double().mean().item() == pytest.approx(0.3, abs=0.01)
    calls = []

    class Recording:
        n_players = 4

        def __call__(self, m):
            calls.append(m.clone())
            return m.double().sum(1)

    terms = InteractionTerms(torch.zeros(1), torch.ones(1, 2), torch.ones(1, 2), torch.zeros(1, 2, 2))
    a = p_faithfulness(Recording(), terms, p=0.7, n_coalitions=30, random_state=11)
    b = p_faithfulness(Recording(), terms, p=0.7, n_coalitions=30, random_state=11)
    assert torch.equal(calls[0], calls[1]) and a.spearman == b.spearman


def test_a_sampled_game_scores_every_explanation_as_p_faithfulness_does_and_plays_once():
    """One sample, several explanations read several ways: each result is the one
    p_faithfulness gives with the same arguments (which plays the game anew), the values
    are the hand game's, and the game is called once on the coalitions (once more on the
    empty coalition, when an explanation without an intercept first needs it)."""
    intercept, first, pairs = random_two_additive()
    game = HandGame(intercept, first, pairs)
    calls = []

    def counted(coalitions):
        calls.append(coalitions.shape[0])
        return game(coalitions)

    counted.n_players = game.n_players
    exact = terms_of(intercept, first, pairs)
    generator = torch.Generator().manual_seed(3)
    noisy = replace(exact, cross=exact.cross + torch.randn(1, S, P, generator=generator, dtype=torch.float64))
    no_intercept = terms_of(intercept + 3.0, first, pairs, has_intercept=False)
    sample = SampledGame(counted, p=0.3, n_coalitions=120, random_state=4, batch_size=50)
    assert calls == [50, 50, 20]
    assert torch.equal(sample.values, game(sample.coalitions))
    for terms in (exact, noisy, no_intercept):
        for interactions_only in (False, True):
            got = sample.p_faithfulness(terms, interactions_only=interactions_only)
            expected = p_faithfulness(game, terms, p=0.3, n_coalitions=120, random_state=4,
                                      interactions_only=interactions_only)
            assert torch.equal(got.coalitions, expected.coalitions)
            assert torch.equal(got.predictions, expected.predictions)
            assert (got.spearman, got.r2, got.pearson) == (expected.spearman, expected.r2, expected.pearson)
    assert calls == [50, 50, 20, 1]  # nu(empty), played once, when first needed
    assert sample.empty_value == pytest.approx(intercept)
    assert sample.p_faithfulness(exact).r2 == pytest.approx(1.0)


def test_batch_size_chunks_the_game_calls():
    sizes = []

    class Sizes:
        n_players = 3

        def __call__(self, m):
            sizes.append(m.shape[0])
            return m.double().sum(1)

    terms = InteractionTerms(torch.zeros(1), torch.ones(1, 1), torch.ones(1, 2), torch.zeros(1, 1, 2))
    p_faithfulness(Sizes(), terms, n_coalitions=10, batch_size=4)
    assert sizes == [4, 4, 2]


def test_bad_inputs():
    class Game:
        n_players = 3

        def __call__(self, m):
            return m.double().sum(1)

    terms = InteractionTerms(torch.zeros(1), torch.ones(1, 1), torch.ones(1, 2), torch.zeros(1, 1, 2))
    for p in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="p"):
            p_faithfulness(Game(), terms, p=p)
    with pytest.raises(TypeError, match="p"):
        p_faithfulness(Game(), terms, p="half")
    with pytest.raises(ValueError, match="n_coalitions"):
        p_faithfulness(Game(), terms, n_coalitions=1)
    with pytest.raises(TypeError, match="explanation"):
        p_faithfulness(Game(), (0.0, torch.ones(3), None))
    with pytest.raises(ValueError, match="game: 3 players, but the explanation has 1 \\+ 3 positions"):
        p_faithfulness(Game(), InteractionTerms(torch.zeros(1), torch.ones(1, 1), torch.ones(1, 3), torch.zeros(1, 1, 3)))
    with pytest.raises(ValueError, match="game"):
        p_faithfulness(type("Bad", (), {"n_players": 3, "__call__": lambda self, m: torch.zeros(2)})(), terms,
                       n_coalitions=10)
    with pytest.raises(TypeError, match="random_state"):
        p_faithfulness(Game(), terms, random_state="seed")
    with pytest.raises(TypeError, match="coalitions"):
        explanation_prediction(terms, Game(), torch.ones(2, 3))
    with pytest.raises(ValueError, match="coalitions"):
        explanation_prediction(terms, Game(), torch.ones(2, 4, dtype=torch.bool))
