"""Quadrature rules under Captum's method names against the closed forms of each rule's
sums of 1, alpha and alpha^2 on [0, 1]; bad ``n_steps`` refused before any work. (BII's
interactions with every rule against a bilinear closed form: tests/_core/
test_bilinear_integrated_interactions.py::test_linear_encoders_closed_form.)"""

import numpy as np
import pytest
import torch

from captum_bilinear import BilinearIntegratedInteractions, DualEncoder
from captum_bilinear._utils.quadrature import MAX_STEPS, check_quadrature, interpolation_nodes

METHODS = ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]


def alpha_integral(method, n):
    """sum_i w_i alpha_i by the rule's definition: exact (1/2) for Gauss-Legendre,
    midpoint and trapezoid; the left / right Riemann sums of alpha are
    sum_k k/n^2 = (n-1)/(2n) and sum_k (k+1)/n^2 = (n+1)/(2n)."""
    return {"riemann_left": (n - 1) / (2 * n), "riemann_right": (n + 1) / (2 * n)}.get(method, 0.5)


def square_integral(method, n):
    """sum_i w_i alpha_i^2: 1/3 for Gauss-Legendre (n >= 2: exact to degree 2n-1),
    1/3 - h^2/12 for the midpoint rule (h = 1/n), 1/3 + h^2/6 for the trapezoid rule
    (h = 1/(n-1)); sum_k (k/n)^2/n = (n-1)(2n-1)/(6n^2) left, (n+1)(2n+1)/(6n^2) right."""
    return {
        "gausslegendre": 1 / 3,
        "riemann_middle": 1 / 3 - 1 / (12 * n**2),
        "riemann_trapezoid": 1 / 3 + 1 / (6 * (n - 1) ** 2),
        "riemann_left": (n - 1) * (2 * n - 1) / (6 * n**2),
        "riemann_right": (n + 1) * (2 * n + 1) / (6 * n**2),
    }[method]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [2, 3, 7, 64])
def test_every_rule_integrates_constants_and_its_degree_exactly(method, n):
    alphas, weights = interpolation_nodes(n, method)
    assert alphas.dtype == weights.dtype == torch.float64 and alphas.shape == weights.shape == (n,)
    assert bool(((alphas >= 0) & (alphas <= 1)).all()) and bool((weights > 0).all())
    assert abs(weights.sum().item() - 1.0) < 1e-14
    assert abs((weights * alphas).sum().item() - alpha_integral(method, n)) < 1e-14
    assert abs((weights * alphas**2).sum().item() - square_integral(method, n)) < 1e-14


def test_trapezoid_weights_and_nodes():
    alphas, weights = interpolation_nodes(4, "riemann_trapezoid")
    torch.testing.assert_close(alphas, torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=torch.float64), rtol=0, atol=1e-15)
    torch.testing.assert_close(weights, torch.tensor([1 / 6, 1 / 3, 1 / 3, 1 / 6], dtype=torch.float64),
                               rtol=0, atol=1e-16)


# ------------------------------------------------------------------- bad n_steps


def test_numpy_integers_are_taken_as_ints():
    value = check_quadrature(np.int64(8), "gausslegendre")
    assert value == 8 and type(value) is int
    alphas, weights = interpolation_nodes(np.int32(3), "riemann_middle")
    assert alphas.shape == weights.shape == (3,)


def test_auto_is_passed_through_for_the_caller():
    assert check_quadrature("auto", "gausslegendre") == "auto"
    with pytest.raises(ValueError, match="n_steps: 'auto' has no fixed nodes"):
        interpolation_nodes("auto", "gausslegendre")


@pytest.mark.parametrize("n_steps, error, message", [
    (True, TypeError, "n_steps: expected an int or 'auto', got bool"),
    (np.bool_(True), TypeError, "n_steps: expected an int or 'auto', got bool"),
    (2.0, TypeError, "n_steps: expected an int or 'auto', got float"),
    ("16", ValueError, "n_steps: expected an int or 'auto', got '16'"),
    ("many", ValueError, "n_steps: expected an int or 'auto', got 'many'"),
    (None, TypeError, "n_steps: expected an int or 'auto', got NoneType"),
    (MAX_STEPS + 1, ValueError, f"n_steps: expected at most {MAX_STEPS} nodes"),
    (10**9, ValueError, f"n_steps: expected at most {MAX_STEPS} nodes"),
    (np.int64(10**9), ValueError, f"n_steps: expected at most {MAX_STEPS} nodes"),
])
def test_bad_n_steps(n_steps, error, message):
    with pytest.raises(error, match=message):
        check_quadrature(n_steps, "gausslegendre")


def test_a_huge_n_steps_is_refused_by_bii_before_any_pass():
    calls = []

    def encoder():
        return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Flatten(), torch.nn.Linear(10, 4))

    encoder_a, encoder_b = encoder(), encoder()
    encoder_a.register_forward_hook(lambda *_: calls.append("a"))
    model = DualEncoder(encoder_a, encoder_b, normalize=False)
    x = torch.randn(1, 2, 3)
    with pytest.raises(ValueError, match=f"n_steps: expected at most {MAX_STEPS} nodes"):
        BilinearIntegratedInteractions(model, (encoder_a[0], encoder_b[0])).attribute((x, x), n_steps=10**9)
    assert calls == []
