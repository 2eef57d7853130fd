"""Coalition sampling for the perturbation methods: the p-weighted designs represent the
measure p^|M| (1-p)^(n-|M|), budgets are split as documented, seeds reproduce."""

import doctest
import math

import pytest
import torch

import captum_bilinear._utils.coalitions as coalitions
from captum_bilinear._utils.coalitions import (
    as_generator,
    coalition_basis,
    identifying_bernoulli_masks,
    identifying_weighted_coalitions,
    split_budget,
    split_samples,
    weighted_coalitions,
)


def probability(masks, p):
    size = masks.sum(1).double()
    return p**size * (1 - p) ** (masks.shape[1] - size)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_power_set_with_exact_probabilities(p):
    design = weighted_coalitions(4, 16, p, as_generator(0))
    assert design.exhaustive and design.masks.shape == (16, 4) and design.enumerated_sizes == (0, 1, 2, 3, 4)
    assert torch.unique(design.masks, dim=0).shape[0] == 16
    torch.testing.assert_close(design.weights, probability(design.masks, p))
    torch.testing.assert_close(design.weights @ design.masks.double(), torch.full((4,), p, dtype=torch.float64))


@pytest.mark.parametrize("n, count, p", [(10, 100, 0.2), (10, 60, 0.5), (12, 64, 0.8), (50, 256, 0.5), (6, 40, 0.5)])
def test_border_trick_enumerates_covered_sizes_and_samples_the_rest(n, count, p):
    design = weighted_coalitions(n, count, p, as_generator(1))
    assert not design.exhaustive and design.masks.shape == (count, n)
    assert torch.unique(design.masks, dim=0).shape[0] == count  # distinct
    assert abs(float(design.weights.sum()) - 1) < 1e-12
    sizes = design.masks.sum(1)
    exact = probability(design.masks, p)
    sampled = torch.ones(count, dtype=torch.bool)
    for k in design.enumerated_sizes:  # all coalitions of the size, with exact probabilities
        rows = sizes == k
        assert int(rows.sum()) == math.comb(n, k)
        torch.testing.assert_close(design.weights[rows], exact[rows])
        sampled &= ~rows
    # the sampled coalitions share the mass of the sizes that were not enumerated
    remaining = sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1) if k not in design.enumerated_sizes)
    assert abs(float(design.weights[sampled].sum()) - remaining) < 1e-12


def test_enumerated_sizes_follow_the_budget():
    # n = 10, p = 0.2, 100 coalitions: size 0 (mass 0.107, 1 coalition) and size 1
    # (mass 0.268, 10 coalitions) are covered; size 2 (45 coalitions) is not.
    design = weighted_coalitions(10, 100, 0.2, as_generator(0))
    assert design.enumerated_sizes == (0, 1)
    counts = torch.bincount(design.masks.sum(1), minlength=11)
    assert counts[0] == 1 and counts[1] == 10 and counts[2] < 45


def test_sampled_weights_estimate_the_measure():
    """Sum_M w(M) f(M) estimates E_p[f]; check it for the inclusion frequencies."""
    n, p = 30, 0.3
    design = weighted_coalitions(n, 3000, p, as_generator(0))
    frequencies = design.weights @ design.masks.double()
    assert (frequencies - p).abs().max() < 0.05


def test_seeds_reproduce():
    first = weighted_coalitions(20, 50, 0.5, as_generator(7))
    again = weighted_coalitions(20, 50, 0.5, as_generator(7))
    other = weighted_coalitions(20, 50, 0.5, as_generator(8))
    assert torch.equal(first.masks, again.masks) and torch.equal(first.weights, again.weights)
    assert not torch.equal(first.masks, other.masks)


def test_identifying_designs_have_full_rank():
    masks = identifying_bernoulli_masks(4, 3, 0.7, as_generator(0))
    design = torch.cat([torch.ones(4, 1), masks.double()], 1)
    assert int(torch.linalg.matrix_rank(design)) == 4
    design, basis = identifying_weighted_coalitions(4, 11, 0.5, as_generator(0), with_pairs=True)
    gram = basis.T @ (design.weights.unsqueeze(1) * basis)
    assert int(torch.linalg.cholesky_ex(gram).info) == 0 and basis.shape == (11, 11)


def test_bernoulli_masks_keep_each_player_with_p():
    """One name for the inclusion probability: ``p``, as in FIxLIP and InteractionLIME."""
    for p in (0.2, 0.7):
        masks = coalitions.bernoulli_masks(4000, 5, p=p, generator=as_generator(1))
        assert abs(float(masks.double().mean()) - p) < 0.02
    masks = identifying_bernoulli_masks(40, 3, p=0.7, generator=as_generator(2))
    assert masks.shape == (40, 3)


def test_coalition_basis_pairs():
    basis = coalition_basis(torch.tensor([[True, True, False], [True, True, True]]), with_pairs=True)
    assert basis.tolist() == [[1, 1, 1, 0, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]]


def test_split_samples():
    assert split_samples(1000, 12, 50) == (16, 63)
    m_a, m_b = split_samples(700, 3, 40)
    assert m_a * m_b >= 700 and m_a >= 4 and m_b >= 41
    with pytest.raises(ValueError, match=r"n_samples: 600 .* need n_samples >= 663 = \(12 \+ 1\) x \(50 \+ 1\)"):
        split_samples(600, 12, 50)


def test_split_budget():
    assert split_budget(2**14, 13, 51, 12, 50, "terms") == (64, 256)
    m_a, m_b = split_budget(1000, 4, 5, 3, 4, "terms")  # both power sets fit
    assert (m_a, m_b) == (8, 16)
    m_a, m_b = split_budget(2000, 4, 51, 3, 50, "terms")  # side a capped at 2^3, b takes the rest
    assert m_a == 8 and m_b == 250
    with pytest.raises(ValueError, match=r"budget: 100 game values cannot identify terms: .* >= 663 = 13 x 51"):
        split_budget(100, 13, 51, 12, 50, "terms")


def test_as_generator():
    assert torch.equal(torch.rand(3, generator=as_generator(5)), torch.rand(3, generator=as_generator(5)))
    generator = torch.Generator().manual_seed(0)
    assert as_generator(generator) is generator
    with pytest.raises(TypeError, match="random_state"):
        as_generator(1.5)
    with pytest.raises(TypeError, match="random_state"):
        as_generator(-1)


def test_docstring_examples():
    failures, attempted = doctest.testmod(coalitions, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failures == 0


def test_a_seed_too_large_for_torch_is_named():
    """torch.Generator.manual_seed raised "Overflow when unpacking long long", naming nothing."""
    from captum_bilinear._utils.coalitions import as_generator

    assert as_generator(2**64 - 1).initial_seed() == 2**64 - 1
    with pytest.raises(ValueError, match=r"random_state: 18446744073709551616 is too large for a seed; expected an "
                                         r"int in \[0, 2\*\*64\)"):
        as_generator(2**64)
