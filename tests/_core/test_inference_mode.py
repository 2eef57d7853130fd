"""Every method under ``torch.inference_mode()`` gives what it gives outside it.

Inside inference mode autograd records nothing, even under ``torch.enable_grad()``: a
gradient method that does not leave it gets zero gradients (BII and InteractionCAM
returned all zeros, with no error, and IntegratedJacobians wrong values). The oracle is
each method's own result outside inference mode (which the other tests check against
Captum and the four-term identity), on inputs made inside inference mode and left as
they were."""

import pytest
import torch
from conftest import caption, clip_layers, make_clip

from captum_bilinear import (
    BilinearIntegratedInteractions,
    IntegratedJacobians,
    InteractionCAM,
    InteractionLIME,
    TokenPatchSimilarity,
    WeightedBanzhafInteractions,
)

METHODS = [
    (BilinearIntegratedInteractions, dict(n_steps=8)),
    (BilinearIntegratedInteractions, dict(n_steps="auto", tolerance=1e-2)),
    (InteractionCAM, {}),
    (InteractionLIME, dict(n_samples=120, random_state=0)),
    (WeightedBanzhafInteractions, dict(budget=120, random_state=0)),
    (TokenPatchSimilarity, {}),
]


@pytest.mark.parametrize("method, options", METHODS, ids=lambda value: getattr(value, "__name__", str(value)))
def test_a_method_under_inference_mode_gives_its_result_outside_it(method, options):
    model = make_clip(dtype=torch.float64)
    layers = clip_layers(model, 0)
    torch.manual_seed(1)
    ids, pixels = caption(320, 1125, 539), torch.randn(1, 3, 32, 32, dtype=torch.float64)
    mask = torch.ones_like(ids)
    expected = method(model, layers).attribute((ids, pixels), additional_forward_args=((mask,), None), **options)
    assert expected.abs().max() > 1e-4  # something to lose
    with torch.inference_mode():
        ids_inside, pixels_inside, mask_inside = ids.clone(), pixels.clone(), mask.clone()
        got = method(model, layers).attribute(
            (ids_inside, pixels_inside), additional_forward_args=((mask_inside,), None), **options)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    # the user's tensors as they were: still inference tensors, unchanged
    assert ids_inside.is_inference() and pixels_inside.is_inference()
    assert torch.equal(ids_inside, ids) and torch.equal(pixels_inside, pixels)
    assert all(not m._forward_hooks for m in model.modules()) and not model.training


def test_bii_terms_and_convergence_delta_under_inference_mode():
    model = make_clip(dtype=torch.float64)
    layers = clip_layers(model, 0)
    torch.manual_seed(2)
    inputs = (caption(320, 1125), torch.randn(1, 3, 32, 32, dtype=torch.float64))
    bii = BilinearIntegratedInteractions(model, layers)
    expected = bii.attribute_terms(inputs, n_steps=8)
    with torch.inference_mode():
        got = bii.attribute_terms(inputs, n_steps=8)
        delta = bii.compute_convergence_delta(got.cross, inputs)
    for name in ("intercept", "first_a", "first_b", "cross", "delta"):
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(delta, expected.delta, rtol=1e-8, atol=1e-12)


def test_integrated_jacobians_under_inference_mode():
    torch.manual_seed(3)
    encoder = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    x = torch.randn(2, 4, dtype=torch.float64)
    ij = IntegratedJacobians(encoder, encoder[0])
    expected, expected_delta = ij.attribute(x, n_steps=16, return_convergence_delta=True)
    with torch.inference_mode():
        inside = x.clone()
        got, delta = ij.attribute(inside, baselines=torch.zeros_like(inside), n_steps=16,
                                  return_convergence_delta=True)
        checked = ij.compute_convergence_delta(got, None, inside)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(delta, expected_delta, rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(checked, expected_delta, rtol=1e-8, atol=1e-12)
    assert inside.is_inference() and torch.equal(inside, x)


def test_a_model_built_inside_inference_mode_is_named_not_a_deep_runtime_error():
    """Its parameters are inference tensors: autograd refused them deep inside the
    encoder ("Inference tensors cannot be saved for backward"). The masking methods need
    no gradients and still run."""
    with torch.inference_mode():
        model = make_clip(dtype=torch.float64)
    layers = clip_layers(model, 0)
    inputs = (caption(320, 1125), torch.randn(1, 3, 32, 32, dtype=torch.float64))
    for method in (BilinearIntegratedInteractions, InteractionCAM):
        with pytest.raises(ValueError, match=r"model: .* was made inside torch.inference_mode\(\) \(the model was "
                                             r"loaded or built there\)"):
            method(model, layers).attribute(inputs)
    assert InteractionLIME(model, layers).attribute(inputs, n_samples=120, random_state=0).shape == (1, 4, 17)
    with torch.inference_mode():
        encoder = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    with pytest.raises(ValueError, match=r"forward_func: [\w.]*weight was made inside torch.inference_mode\(\)"):
        IntegratedJacobians(encoder, encoder[0]).attribute(torch.randn(2, 4), n_steps=4)
