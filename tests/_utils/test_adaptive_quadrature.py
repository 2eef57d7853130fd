"""The adaptive composite rule against closed-form integrals."""

import math

import numpy as np
import pytest
import torch

from captum_bilinear._utils.adaptive_quadrature import integrate_to_tolerance, panel_rule

EPS = 1e-3  # sqrt(alpha + EPS) is rough near 0: the panels must crowd there


def primitive(alphas):
    return torch.stack([torch.sqrt(alphas + EPS), torch.sin(20 * alphas)], dim=1)


def derivative(alphas):
    return torch.stack([0.5 / torch.sqrt(alphas + EPS), 20 * torch.cos(20 * alphas)], dim=1)


def run(target, max_nodes=4096):
    calls = []

    def integrate(alphas, weights):
        calls.append(len(alphas))
        return weights @ derivative(alphas)  # (K, 2 positions)

    result = integrate_to_tolerance(integrate, lambda q: q.sum(-1, keepdim=True),
                                    lambda a: primitive(a).sum(-1, keepdim=True),
                                    lambda r: r.abs().sum(-1), target, max_nodes)
    return result, calls


def test_panel_rule_integrates_polynomials_of_degree_seven_exactly():
    alphas, weights = panel_rule([(0.0, 0.25), (0.25, 1.0)])
    for degree in range(8):
        assert float((weights @ alphas**degree).sum()) == pytest.approx(1 / (degree + 1), abs=1e-14)


@pytest.mark.parametrize("target", [1e-4, 1e-9])
def test_reaches_the_closed_form_within_the_target(target):
    result, calls = run(target)
    exact = np.array([math.sqrt(1 + EPS) - math.sqrt(EPS), math.sin(20)])
    assert result.reached and result.error <= target
    # the residual bounds the summed error; each position's error is as small here
    assert np.abs(result.integral.numpy() - exact).max() <= 10 * target
    assert sum(calls) == result.evaluated and result.nodes <= result.evaluated


def test_refines_where_the_integrand_is_rough():
    result, _ = run(1e-9)
    assert result.nodes > 16
    narrowest = min(result.panels, key=lambda panel: panel[1] - panel[0])
    assert narrowest[0] == 0.0  # sqrt(alpha + EPS) is rough at 0, sin(20 alpha) is not
    assert result.panels[-1][1] - result.panels[-1][0] > 8 * (narrowest[1] - narrowest[0])


def test_stops_at_max_nodes():
    result, calls = run(1e-14, max_nodes=40)
    assert not result.reached and result.evaluated <= 40 and sum(calls) == result.evaluated
