"""Gauss-Kronrod rules and the adaptive panels against closed forms."""

import math

import numpy as np
import pytest
import torch

from captum_bilinear._utils.adaptive_quadrature import (
    INITIAL_PANELS,
    column_relative,
    integrate_adaptively,
    max_relative,
    panel_nodes,
    panel_rule,
)
from captum_bilinear._utils.kronrod import kronrod_rule

EPS = 1e-3  # sqrt(alpha + EPS) is rough near 0: the panels must crowd there


@pytest.mark.parametrize("n", [3, 5, 7, 10])
def test_kronrod_rule_integrates_polynomials_to_degree_3n_plus_1_and_embeds_gauss(n):
    nodes, kronrod, gauss = kronrod_rule(n)
    assert len(nodes) == 2 * n + 1 and bool((np.diff(nodes) > 0).all()) and 0 < nodes[0] and nodes[-1] < 1
    assert bool((kronrod > 0).all())
    for degree in range(3 * n + 2):  # the integral of alpha^d over [0, 1] is 1 / (d + 1)
        assert kronrod @ nodes**degree == pytest.approx(1 / (degree + 1), abs=1e-14)
    for degree in range(2 * n):
        assert gauss @ nodes**degree == pytest.approx(1 / (degree + 1), abs=1e-14)
    # the Gauss part is numpy's n-point Gauss-Legendre rule on [0, 1]
    x, w = np.polynomial.legendre.leggauss(n)
    np.testing.assert_allclose(nodes[gauss > 0], (x + 1) / 2, atol=1e-14)
    np.testing.assert_allclose(gauss[gauss > 0], w / 2, atol=1e-14)
    # the first degree it does not integrate exactly (odd degrees are exact by symmetry):
    # the shifted Legendre polynomial of that degree integrates to 0 over [0, 1]
    first_inexact = 3 * n + 2 + n % 2
    legendre = np.polynomial.legendre.Legendre.basis(first_inexact)
    assert abs(kronrod @ legendre(2 * nodes - 1)) > 1e-6


def test_panel_rule_gives_each_panels_kronrod_and_gauss_weights():
    alphas, weights = panel_rule([(0.0, 0.25), (0.25, 1.0)])
    m = panel_nodes()
    assert alphas.shape == (2 * m,) and weights.shape == (4, 2 * m)
    for degree in range(8):
        exact = [0.25 ** (degree + 1) / (degree + 1), (1 - 0.25 ** (degree + 1)) / (degree + 1)]
        got = (weights @ alphas**degree).tolist()
        assert got == pytest.approx(exact + exact, abs=1e-14)


def primitive(alphas):
    return torch.stack([torch.sqrt(alphas + EPS), torch.sin(20 * alphas)], dim=1)


def derivative(alphas):
    return torch.stack([0.5 / torch.sqrt(alphas + EPS), 20 * torch.cos(20 * alphas)], dim=1)


EXACT = np.array([math.sqrt(1 + EPS) - math.sqrt(EPS), math.sin(20)])


def run(tolerance, max_nodes=4096):
    calls = []

    def integrate(alphas, weights):
        calls.append(len(alphas))
        return weights @ derivative(alphas)  # (W, 2 positions)

    result = integrate_adaptively(
        integrate, lambda q: q.sum(-1, keepdim=True), lambda a: primitive(a).sum(-1, keepdim=True),
        max_relative, lambda residual: residual.abs().sum(-1) / abs(EXACT.sum()), tolerance, max_nodes)
    return result, calls


@pytest.mark.parametrize("tolerance", [1e-3, 1e-6, 1e-10])
def test_reaches_the_closed_form_and_its_estimate_is_not_below_the_error(tolerance):
    result, calls = run(tolerance)
    actual = float(np.abs(result.integral.numpy() - EXACT).max() / np.abs(EXACT).max())
    assert result.reached and result.error <= tolerance and result.completeness <= tolerance
    assert actual <= tolerance
    # the estimate is of the error reached (calibrated, not a bound): not far below it
    assert actual <= max(2 * result.error, 1e-14)
    assert sum(calls) == result.evaluated and result.nodes <= result.evaluated


def test_refines_where_the_integrand_is_rough():
    result, _ = run(1e-9)
    assert result.nodes > INITIAL_PANELS * panel_nodes()
    narrowest = min(result.panels, key=lambda panel: panel[1] - panel[0])
    assert narrowest[0] == 0.0  # sqrt(alpha + EPS) is rough at 0, sin(20 alpha) is not
    assert result.panels[-1][1] - result.panels[-1][0] > 8 * (narrowest[1] - narrowest[0])


def test_a_smooth_integrand_stops_at_the_first_panels():
    def integrate(alphas, weights):
        return weights @ torch.stack([torch.cos(alphas), 2 * alphas], dim=1)

    result = integrate_adaptively(integrate, lambda q: q.sum(-1, keepdim=True),
                                  lambda a: (torch.sin(a) + a**2)[:, None], max_relative,
                                  lambda residual: residual.abs().sum(-1), 1e-8, 4096)
    assert result.evaluated == INITIAL_PANELS * panel_nodes() and result.reached
    assert float(result.integral[0]) == pytest.approx(math.sin(1), abs=1e-14)


def test_stops_at_max_nodes():
    result, calls = run(1e-14, max_nodes=60)
    assert not result.reached and result.evaluated <= 60 and sum(calls) == result.evaluated


def test_relative_errors_are_per_panel_in_units_of_the_total():
    assert max_relative(torch.tensor([[0.1, -0.2], [0.0, 0.05]]), torch.tensor([1.0, -2.0])).tolist() == \
        pytest.approx([0.1, 0.025])
    differences = torch.tensor([[[3.0, 0.0], [4.0, 1.0]]])  # one panel, D = 2, two columns
    total = torch.tensor([[0.0, 6.0], [10.0, 8.0]])  # column norms 10 and 10
    assert column_relative(differences, total).tolist() == pytest.approx([0.5])
