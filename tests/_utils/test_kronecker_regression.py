"""The Kronecker-structured solves against dense weighted least squares / scikit-learn."""

import doctest

import pytest
import torch

import captum_bilinear._utils.kronecker_regression as regression
from captum_bilinear._utils.coalitions import as_generator, coalition_basis, pair_indices, weighted_coalitions
from captum_bilinear._utils.kronecker_regression import fit_bilinear_ridge, fit_second_order_game, spd_solve


def dense_design(masks_a, masks_b, intra):
    x_a, x_b = masks_a.double(), masks_b.double()
    m_a, m_b = len(x_a), len(x_b)
    rows_a, rows_b = x_a.repeat_interleave(m_b, 0), x_b.repeat(m_a, 1)
    columns = [torch.ones(m_a * m_b, 1, dtype=torch.float64), rows_a, rows_b,
               (rows_a.unsqueeze(2) * rows_b.unsqueeze(1)).reshape(m_a * m_b, -1)]
    if intra:
        i, j = pair_indices(x_a.shape[1])
        columns.append(rows_a[:, i] * rows_a[:, j])
        i, j = pair_indices(x_b.shape[1])
        columns.append(rows_b[:, i] * rows_b[:, j])
    return torch.cat(columns, 1)


@pytest.mark.parametrize("intra", [False, True])
@pytest.mark.parametrize("p", [0.3, 0.5])
def test_second_order_fit_equals_dense_weighted_least_squares(intra, p):
    generator = as_generator(0)
    side_a = weighted_coalitions(4, 14, p, generator)
    side_b = weighted_coalitions(5, 24, p, generator)
    values = torch.randn(14, 24, dtype=torch.float64, generator=generator)
    fit = fit_second_order_game(
        coalition_basis(side_a.masks, intra), side_a.weights, coalition_basis(side_b.masks, intra), side_b.weights,
        values, 4, 5, intra,
    )
    design = dense_design(side_a.masks, side_b.masks, intra)
    weights = (side_a.weights.unsqueeze(1) * side_b.weights.unsqueeze(0)).reshape(-1)
    expected = torch.linalg.solve(design.T @ (weights.unsqueeze(1) * design), design.T @ (weights * values.reshape(-1)))
    got = [fit.intercept.view(1), fit.first_a, fit.first_b, fit.cross.reshape(-1)]
    if intra:
        got += [fit.intra_a, fit.intra_b]
    else:
        assert fit.intra_a is None and fit.intra_b is None
    torch.testing.assert_close(torch.cat(got), expected, atol=1e-11, rtol=1e-9)


def test_cross_pairs_do_not_depend_on_intra_terms():
    generator = as_generator(1)
    side_a = weighted_coalitions(4, 14, 0.4, generator)
    side_b = weighted_coalitions(5, 24, 0.4, generator)
    values = torch.randn(14, 24, dtype=torch.float64, generator=generator)
    fits = [
        fit_second_order_game(coalition_basis(side_a.masks, intra), side_a.weights,
                              coalition_basis(side_b.masks, intra), side_b.weights, values, 4, 5, intra)
        for intra in (False, True)
    ]
    torch.testing.assert_close(fits[0].cross, fits[1].cross, atol=1e-12, rtol=0)
    assert not torch.allclose(fits[0].first_a, fits[1].first_a)


@pytest.mark.parametrize("alpha", [0.0, 0.01, 3.0])
def test_bilinear_ridge_equals_scikit_learn_ridge(alpha):
    from sklearn import linear_model as sklearn

    generator = torch.Generator().manual_seed(0)
    keep_a = torch.rand(6, 3, generator=generator) < 0.7
    keep_b = torch.rand(9, 5, generator=generator) < 0.7
    values = torch.randn(6, 9, dtype=torch.float64, generator=generator)
    weights = torch.rand(6, 9, dtype=torch.float64, generator=generator)
    W, c = fit_bilinear_ridge(keep_a, keep_b, values, weights, alpha)
    features = (keep_a.double()[:, None, :, None] * keep_b.double()[None, :, None, :]).reshape(54, 15) / 15**0.5
    reference = sklearn.Ridge(alpha=alpha).fit(features.numpy(), values.reshape(-1).numpy(), sample_weight=weights.reshape(-1).numpy())
    torch.testing.assert_close(W.reshape(-1), torch.from_numpy(reference.coef_) / 15**0.5, atol=1e-10, rtol=1e-8)
    assert abs(float(c) - reference.intercept_) < 1e-10


def test_singular_system_warns_and_returns_minimum_norm():
    matrix = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="singular"):
        solution = spd_solve(matrix, torch.tensor([2.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(solution, torch.tensor([1.0, 1.0], dtype=torch.float64))


def test_docstring_examples():
    failures, attempted = doctest.testmod(regression, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failures == 0
