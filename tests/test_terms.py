"""InteractionTerms against brute force: predictions summed term by term over subsets,
and shapiq's InteractionValues read back key by key."""

import itertools

import pytest
import shapiq
import torch

from captum_bilinear import InteractionTerms


def random_terms(batch=2, positions=(3, 4), seed=0, intra=True):
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    S, P = positions

    def symmetric(n):
        upper = torch.triu(draw(batch, n, n), 1)
        return upper + upper.transpose(1, 2)

    return InteractionTerms(draw(batch), draw(batch, S), draw(batch, P), draw(batch, S, P),
                            intra_a=symmetric(S) if intra else None, intra_b=symmetric(P) if intra else None)


def brute_force(terms, index, present):
    """e_0 + sum of present singletons + every present unordered pair, term by term."""
    S, P = terms.positions
    value = float(terms.intercept[index])
    singles = torch.cat([terms.first_a[index], terms.first_b[index]])
    value += sum(float(singles[i]) for i in present)
    for i, j in itertools.combinations(sorted(present), 2):
        if i < S <= j:
            value += float(terms.cross[index, i, j - S])
        elif j < S:
            value += float(terms.intra_a[index, i, j])
        else:
            value += float(terms.intra_b[index, i - S, j - S])
    return value


def test_predict_and_total_equal_the_term_by_term_sum():
    terms = random_terms()
    n = sum(terms.positions)
    coalitions = torch.tensor(list(itertools.product([False, True], repeat=n)))
    for index in range(2):
        expected = [brute_force(terms, index, [i for i in range(n) if row[i]]) for row in coalitions.tolist()]
        torch.testing.assert_close(terms.predict(coalitions, index), torch.tensor(expected, dtype=torch.float64))
        assert float(terms.total()[index]) == pytest.approx(brute_force(terms, index, list(range(n))))


def test_non_players_are_always_present():
    terms = random_terms(batch=1, intra=False)
    players_a = torch.tensor([[True, False, True]])
    terms.players_a = players_a
    coalitions = torch.zeros(1, 7, dtype=torch.bool)  # nobody asked for; position a1 is no player
    assert float(terms.predict(coalitions)[0]) == pytest.approx(brute_force(terms, 0, [1]))


def test_to_shapiq_round_trips_every_value():
    terms = random_terms()
    S, P = terms.positions
    for index in range(2):
        values = terms.to_shapiq(index)
        assert isinstance(values, shapiq.InteractionValues)
        assert values.n_players == S + P and values.min_order == 0 and values.max_order == 2
        assert values.baseline_value == pytest.approx(float(terms.intercept[index]))
        assert values[()] == pytest.approx(float(terms.intercept[index]))
        for s in range(S):
            assert values[(s,)] == pytest.approx(float(terms.first_a[index, s]))
            for p in range(P):
                assert values[(s, S + p)] == pytest.approx(float(terms.cross[index, s, p]))
            for t in range(s + 1, S):
                assert values[(s, t)] == pytest.approx(float(terms.intra_a[index, s, t]))
        for p in range(P):
            assert values[(S + p,)] == pytest.approx(float(terms.first_b[index, p]))
        # shapiq's own matrix of the second order is the cross and intra blocks
        second = torch.as_tensor(values.get_n_order_values(2))
        torch.testing.assert_close(second[:S, S:], terms.cross[index])
        torch.testing.assert_close(second[:S, :S], terms.intra_a[index])
        # and its sum over all interactions is the prediction of the grand coalition
        assert float(values.values.sum()) == pytest.approx(float(terms.total()[index]))


def test_indexing_shapes_and_errors():
    terms = random_terms(batch=3)
    one = terms[-1]
    assert one.batch_size == 1 and torch.equal(one.cross[0], terms.cross[2])
    with pytest.raises(IndexError, match="index: 3 is out of range"):
        terms[3]
    with pytest.raises(ValueError, match=r"first_a: expected shape \(1, 2\)"):
        InteractionTerms(torch.zeros(1), torch.zeros(1, 3), torch.zeros(1, 2), torch.zeros(1, 2, 2))
    with pytest.raises(TypeError, match="coalitions"):
        terms.predict(torch.ones(1, 7))


def test_first_order_values_are_fixlips_theorem_one():
    terms = random_terms(batch=1, positions=(2, 2))
    terms.settings["p"] = 0.3
    values_a, values_b = terms.first_order_values()
    expected = terms.first_a[0, 0] + 0.3 * (terms.cross[0, 0].sum() + terms.intra_a[0, 0].sum())
    assert float(values_a[0, 0]) == pytest.approx(float(expected))
    assert values_b.shape == (1, 2)
