"""p-faithfulness and its statistics against hand-computed values and exact
2-additive games (whose own coefficients must be perfectly faithful)."""

import itertools
import math

import pytest
import torch

from captum_bilinear.metrics import (
    cross_modal_explanation,
    explanation_prediction,
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

N_PLAYERS = 6


def random_two_additive(seed=0, n=N_PLAYERS):
    generator = torch.Generator().manual_seed(seed)
    intercept = float(torch.randn(1, generator=generator))
    first = torch.randn(n, generator=generator, dtype=torch.float64)
    pairs = {(i, j): float(torch.randn(1, generator=generator)) for i, j in itertools.combinations(range(n), 2)}
    return intercept, first, pairs


def game_from(intercept, first, pairs):
    """A 2-additive game evaluated coalition by coalition, pair by pair."""

    def game(coalitions):
        values = []
        for row in coalitions.tolist():
            value = intercept + sum(first[i].item() for i in range(len(row)) if row[i])
            value += sum(v for (i, j), v in pairs.items() if row[i] and row[j])
            values.append(value)
        return torch.tensor(values, dtype=torch.float64)

    return game


def upper_matrix(pairs, n=N_PLAYERS):
    matrix = torch.zeros(n, n, dtype=torch.float64)
    for (i, j), value in pairs.items():
        matrix[i, j] = value
    return matrix


def test_exact_coefficients_are_perfectly_faithful():
    intercept, first, pairs = random_two_additive()
    game = game_from(intercept, first, pairs)
    upper = upper_matrix(pairs)
    for pairwise in (upper, upper + upper.T):  # upper-triangular and symmetric forms
        result = p_faithfulness(game, intercept, first, pairwise, p=0.3, n_coalitions=200, random_state=1)
        assert result.spearman == pytest.approx(1.0)
        assert result.r2 == pytest.approx(1.0)
        assert torch.allclose(result.predictions, result.game_values)


def test_perturbed_explanation_is_less_faithful():
    intercept, first, pairs = random_two_additive()
    game = game_from(intercept, first, pairs)
    upper = upper_matrix(pairs)
    generator = torch.Generator().manual_seed(9)
    noise = torch.triu(torch.randn(N_PLAYERS, N_PLAYERS, generator=generator, dtype=torch.float64), 1)
    result = p_faithfulness(game, intercept, first, upper + noise, p=0.5, n_coalitions=300, random_state=1)
    assert result.spearman < 0.99 and result.r2 < 0.99
    # dropping the interactions (a first-order explanation) is less faithful too
    first_only = p_faithfulness(game, intercept, first, None, p=0.5, n_coalitions=300, random_state=1)
    assert first_only.r2 < 0.99


def test_intercept_shifts_r2_but_not_the_correlations():
    intercept, first, pairs = random_two_additive()
    game = game_from(intercept, first, pairs)
    result = p_faithfulness(game, intercept + 3.0, first, upper_matrix(pairs), n_coalitions=100, random_state=2)
    assert result.spearman == pytest.approx(1.0) and result.pearson == pytest.approx(1.0)
    assert result.r2 < 0.5


def test_cross_modal_game_with_interactions_only():
    # players: 2 caption positions, then 3 image positions; the game is purely cross-modal
    cross = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], dtype=torch.float64)
    pairs = {(i, 2 + j): float(cross[i, j]) for i in range(2) for j in range(3)}
    game = game_from(0.0, torch.zeros(5, dtype=torch.float64), pairs)
    first, pairwise = cross_modal_explanation(cross)
    assert first is None
    result = p_faithfulness(game, 0.0, first, pairwise, p=0.5, n_coalitions=100, random_state=0)
    assert result.spearman == pytest.approx(1.0) and result.r2 == pytest.approx(1.0)


def test_cross_modal_explanation_blocks():
    cross = torch.tensor([[1.0, 2.0]])
    first, pairwise = cross_modal_explanation(
        cross, first_b=torch.tensor([5.0, 6.0]), intra_b=torch.tensor([[0.0, 7.0], [7.0, 0.0]])
    )
    assert first.tolist() == [0.0, 5.0, 6.0]
    assert pairwise.tolist() == [[0.0, 1.0, 2.0], [0.0, 0.0, 7.0], [0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="first_a"):
        cross_modal_explanation(cross, first_a=torch.zeros(2))
    with pytest.raises(ValueError, match="intra_a"):
        cross_modal_explanation(cross, intra_a=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="cross"):
        cross_modal_explanation(torch.zeros(3))


def test_prediction_counts_each_pair_once():
    coalitions = torch.tensor([[True, False, True], [True, True, True], [False, False, False]])
    pairwise = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 4.0], [2.0, 4.0, 0.0]])  # symmetric
    prediction = explanation_prediction(coalitions, 0.5, torch.tensor([1.0, 10.0, 100.0]), pairwise)
    assert prediction.tolist() == [0.5 + 101.0 + 2.0, 0.5 + 111.0 + 7.0, 0.5]


def test_sampling_is_seeded_and_has_inclusion_probability_p():
    first = sample_coalitions(8, 50, p=0.3, random_state=5)
    assert torch.equal(first, sample_coalitions(8, 50, p=0.3, random_state=5))
    assert not torch.equal(first, sample_coalitions(8, 50, p=0.3, random_state=6))
    many = sample_coalitions(10, 20000, p=0.3, random_state=0)
    assert many.double().mean().item() == pytest.approx(0.3, abs=0.01)
    calls = []
    game = lambda m: calls.append(m.clone()) or m.double().sum(1)
    a = p_faithfulness(game, 0.0, torch.ones(4), None, p=0.7, n_coalitions=30, random_state=11)
    b = p_faithfulness(game, 0.0, torch.ones(4), None, p=0.7, n_coalitions=30, random_state=11)
    assert torch.equal(calls[0], calls[1]) and a.spearman == b.spearman


def test_batch_size_chunks_the_game_calls():
    sizes = []
    game = lambda m: sizes.append(m.shape[0]) or m.double().sum(1)
    p_faithfulness(game, 0.0, torch.ones(3), None, n_coalitions=10, batch_size=4)
    assert sizes == [4, 4, 2]


def test_bad_inputs():
    game = lambda m: m.double().sum(1)
    first = torch.ones(3)
    for p in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="p"):
            p_faithfulness(game, 0.0, first, None, p=p)
    with pytest.raises(TypeError, match="p"):
        p_faithfulness(game, 0.0, first, None, p="half")
    with pytest.raises(ValueError, match="n_coalitions"):
        p_faithfulness(game, 0.0, first, None, n_coalitions=1)
    with pytest.raises(ValueError, match="first_order, pairwise"):
        p_faithfulness(game, 0.0, None, None)
    with pytest.raises(ValueError, match="pairwise"):
        p_faithfulness(game, 0.0, first, torch.zeros(4, 4))  # size mismatch
    with pytest.raises(ValueError, match="pairwise"):
        p_faithfulness(game, 0.0, None, torch.tensor([[0.0, 1.0], [2.0, 0.0]]))  # neither symmetric nor upper
    with pytest.raises(ValueError, match="pairwise"):
        p_faithfulness(game, 0.0, None, torch.eye(2))  # diagonal
    with pytest.raises(ValueError, match="first_order"):
        p_faithfulness(game, 0.0, torch.ones(2, 2), None)
    with pytest.raises(ValueError, match="game_fn"):
        p_faithfulness(lambda m: torch.zeros(3), 0.0, first, None, n_coalitions=10)
    with pytest.raises(TypeError, match="random_state"):
        p_faithfulness(game, 0.0, first, None, random_state="seed")
    with pytest.raises(TypeError, match="coalitions"):
        explanation_prediction(torch.ones(2, 3), 0.0, first)
    with pytest.raises(ValueError, match="coalitions"):
        explanation_prediction(torch.ones(2, 4, dtype=torch.bool), 0.0, first)
