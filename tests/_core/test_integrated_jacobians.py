"""IntegratedJacobians against Captum's LayerIntegratedGradients, one output at a time."""

import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerIntegratedGradients
from conftest import BOS, EOS, PAD, features, make_clip

from captum_bilinear import IntegratedJacobians


def image_embedding(model):
    return lambda px: F.normalize(features(model.get_image_features(pixel_values=px)), dim=-1)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_right", "riemann_trapezoid"])
@pytest.mark.parametrize("multiply_by_inputs", [True, False])
def test_equals_captum_lig_for_every_output_dimension(method, multiply_by_inputs):
    model = make_clip(dtype=torch.float64)
    forward = image_embedding(model)
    layer = model.vision_model.encoder.layers[1]
    torch.manual_seed(0)
    pixels, baselines = torch.randn(2, 3, 32, 32, dtype=torch.float64), torch.randn(2, 3, 32, 32, dtype=torch.float64)
    ij = IntegratedJacobians(forward, layer, multiply_by_inputs=multiply_by_inputs)
    result = ij.attribute(pixels, baselines=baselines, n_steps=5, method=method, internal_batch_size=7)
    assert result.shape == (2, 16, 17, 32)
    lig = LayerIntegratedGradients(forward, layer, multiply_by_inputs=multiply_by_inputs)
    for k in range(16):
        expected = lig.attribute(pixels, baselines=baselines, target=k, n_steps=5, method=method)
        if method == "riemann_trapezoid":  # Captum's steps h/2, h, ..., h/2 have h = 1/n, not 1/(n-1)
            expected = expected * 5 / 4
        # Captum rounds its step sizes to float32.
        torch.testing.assert_close(result[:, k], expected, rtol=1e-5, atol=1e-7 * expected.abs().max().item())


def test_text_layer_input_and_additional_args():
    model = make_clip(dtype=torch.float64)

    def text(ids, mask):
        return F.normalize(features(model.get_text_features(input_ids=ids, attention_mask=mask)), dim=-1)

    # Captum's layer-input hook cannot take CLIP encoder layers (a None argument), so the
    # layer-input case uses the final layer norm, which takes one tensor.
    layer = model.text_model.final_layer_norm
    ids = torch.tensor([[BOS, 320, 1125, 539, EOS]])
    reference = torch.tensor([[BOS, PAD, PAD, PAD, EOS]])
    mask = torch.ones_like(ids)
    result, delta = IntegratedJacobians(text, layer).attribute(
        ids, baselines=reference, additional_forward_args=(mask,), n_steps=8, attribute_to_layer_input=True,
        return_convergence_delta=True,
    )
    lig = LayerIntegratedGradients(text, layer)
    for k in (0, 7, 15):
        expected = lig.attribute(ids, baselines=reference, additional_forward_args=(mask,), target=k, n_steps=8,
                                 attribute_to_layer_input=True)
        torch.testing.assert_close(result[:, k], expected, rtol=1e-5, atol=1e-7 * expected.abs().max().item())
    with torch.no_grad():
        change = text(ids, mask) - text(reference, mask)
    torch.testing.assert_close(result.flatten(2).sum(-1) - change, delta, rtol=0, atol=1e-12)
    assert delta.abs().max() < 1e-3 * change.abs().max()


def test_returns_layer_shape_for_a_plain_mlp():
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    result = IntegratedJacobians(mlp, mlp[1]).attribute(x, n_steps=4)
    assert result.shape == (3, 3, 6)
    lig = LayerIntegratedGradients(mlp, mlp[1])
    for k in range(3):
        torch.testing.assert_close(result[:, k], lig.attribute(x, target=k, n_steps=4), rtol=1e-5, atol=1e-8)


def test_layer_outside_a_bound_method_is_refused_and_eval_mode_restored():
    model, other = make_clip(), make_clip(seed=1)
    with pytest.raises(ValueError, match="layer: this CLIPEncoderLayer is not a module of forward_func"):
        IntegratedJacobians(model.get_image_features, other.vision_model.encoder.layers[0])
    model.train()
    ij = IntegratedJacobians(model.get_image_features, model.vision_model.encoder.layers[0])
    result = ij.attribute(torch.randn(1, 3, 32, 32), n_steps=2)
    assert result.shape == (1, 16, 17, 32)  # the HF output object is read through pooler_output
    assert all(m.training for m in model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_compute_convergence_delta_is_attributes_delta_against_the_encoders_outputs():
    """Per output dimension: the attributions' sum minus the encoder's own change
    ``F(inputs) - F(baselines)``, as ``attribute(..., return_convergence_delta=True)``
    reports it; for one ``target``, what Captum's LayerIntegratedGradients computes."""
    model = make_clip(dtype=torch.float64)

    def text(ids, mask):
        return F.normalize(features(model.get_text_features(input_ids=ids, attention_mask=mask)), dim=-1)

    layer = model.text_model.encoder.layers[1]
    ids = torch.tensor([[BOS, 320, 1125, 539, EOS], [BOS, 539, 320, 320, EOS]])
    reference = torch.tensor([[BOS, PAD, PAD, PAD, EOS]])
    mask = torch.ones_like(ids)
    ij = IntegratedJacobians(text, layer)
    result, delta = ij.attribute(ids, baselines=reference, additional_forward_args=(mask,), n_steps=3,
                                 return_convergence_delta=True)
    computed = ij.compute_convergence_delta(result, reference, ids, additional_forward_args=(mask,))
    with torch.no_grad():
        change = text(ids, mask) - text(reference.expand_as(ids), mask)
    assert computed.shape == delta.shape == (2, 16)
    assert delta.abs().max() > 1e-6  # three nodes: a delta to compare, not round-off
    torch.testing.assert_close(computed, result.flatten(2).sum(-1) - change, rtol=0, atol=1e-12)
    torch.testing.assert_close(computed, delta, rtol=0, atol=1e-12)
    lig = LayerIntegratedGradients(text, layer)
    for k in (0, 9):
        expected = lig.compute_convergence_delta(result[:, k], reference, ids, target=k, additional_forward_args=(mask,))
        torch.testing.assert_close(ij.compute_convergence_delta(result[:, k], reference, ids, target=k,
                                                                additional_forward_args=(mask,)),
                                   expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"attributions: expected \(batch, D, \*activation\)"):
        ij.compute_convergence_delta(result[:, 0], reference, ids, additional_forward_args=(mask,))
    with pytest.raises(ValueError, match="target: the forward function has 16 outputs"):
        ij.compute_convergence_delta(result[:, 0], reference, ids, target=16, additional_forward_args=(mask,))


@pytest.mark.parametrize("n_steps", [4, "auto"])
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_non_bool_return_convergence_delta_is_refused_before_any_forward_pass(n_steps, value):
    """A truthy ``"yes"`` is not taken for True: a TypeError naming the argument, as every
    flag of the library (:func:`captum_bilinear._utils.checks.check_flag`), before the
    forward function runs."""
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    calls = []
    handles = [m.register_forward_pre_hook(lambda module, args: calls.append(module)) for m in mlp.modules()]
    try:
        with pytest.raises(TypeError, match=r"^return_convergence_delta: expected True or False, got"):
            IntegratedJacobians(mlp, mlp[1]).attribute(torch.randn(2, 4, dtype=torch.float64), n_steps=n_steps,
                                                       return_convergence_delta=value)
    finally:
        for handle in handles:
            handle.remove()
    assert calls == []
