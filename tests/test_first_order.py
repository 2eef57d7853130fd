"""Captum's first-order methods on the conditioned similarity, and first-order projections."""

import pytest
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients, KernelShap, LayerGradCam, LayerIntegratedGradients, Lime, Saliency
from conftest import BOS, EOS, PAD, caption, clip_layers, features, make_clip

from captum_bilinear import BilinearIntegratedInteractions, ConditionedSimilarity, first_order_projection
from captum_bilinear.references import black_image


def direct_similarity(model, input_ids, pixel_values):
    text = features(model.get_text_features(input_ids=input_ids))
    image = features(model.get_image_features(pixel_values=pixel_values))
    return F.cosine_similarity(text, image, dim=-1)


def test_bii_projection_equals_lig_of_conditioned_similarity(pixels):
    model = make_clip(dtype=torch.float64)
    pixel_values = pixels.double()
    input_ids = caption(320, 1125, 539)
    reference_ids = torch.tensor([[BOS, PAD, PAD, PAD, EOS]])
    layers = clip_layers(model)
    A = BilinearIntegratedInteractions(model, layers).attribute((input_ids, pixel_values), n_steps=32)
    forward = ConditionedSimilarity(model, input_ids, side="b", fixed_baselines=reference_ids)
    expected = LayerIntegratedGradients(forward, layers[1]).attribute(
        pixel_values, baselines=black_image(pixel_values), n_steps=32).sum(-1)
    torch.testing.assert_close(first_order_projection(A, "b"), expected, rtol=1e-6, atol=1e-9)


def test_integrated_gradients_on_pixels_are_complete_for_the_hf_similarity(pixels):
    model = make_clip(dtype=torch.float64)
    pixel_values, input_ids = pixels.double(), caption(320, 1125)
    forward = ConditionedSimilarity(model, input_ids, side="b")
    reference = black_image(pixel_values)
    attributions = IntegratedGradients(forward).attribute(pixel_values, baselines=reference, n_steps=64)
    with torch.no_grad():
        change = direct_similarity(model, input_ids, pixel_values) - direct_similarity(model, input_ids, reference)
    torch.testing.assert_close(attributions.sum(), change[0], rtol=1e-4, atol=1e-7)


def test_text_side_varies_with_a_batch_expanded_by_captum():
    model = make_clip(dtype=torch.float64)
    torch.manual_seed(0)
    pixel_values = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    input_ids = torch.cat([caption(320, 1125), caption(539, 2368)])
    forward = ConditionedSimilarity(model, pixel_values, side="a")
    layer = model.text_model.embeddings
    reference_ids = torch.tensor([[BOS, PAD, PAD, EOS]] * 2)
    attributions = LayerIntegratedGradients(forward, layer).attribute(input_ids, baselines=reference_ids, n_steps=16)
    with torch.no_grad():
        change = direct_similarity(model, input_ids, pixel_values) - direct_similarity(model, reference_ids, pixel_values)
    torch.testing.assert_close(attributions.sum((1, 2)), change, rtol=1e-3, atol=1e-6)


def test_other_captum_methods_accept_it(pixels):
    model = make_clip()
    forward = ConditionedSimilarity(model, caption(320, 1125), side="b")
    saliency = Saliency(forward).attribute(pixels.clone().requires_grad_(True))
    pixels_with_grad = pixels.clone().requires_grad_(True)
    forward(pixels_with_grad).sum().backward()
    torch.testing.assert_close(saliency, pixels_with_grad.grad.abs())
    grad_cam = LayerGradCam(forward, model.vision_model.encoder.layers[-1]).attribute(pixels, attr_dim_summation=False)
    assert grad_cam.shape[:2] == (1, 17)
    patches = torch.arange(16).view(4, 4).repeat_interleave(8, 0).repeat_interleave(8, 1).expand(1, 3, 32, 32)
    for method in (Lime(forward), KernelShap(forward)):
        weights = method.attribute(pixels, baselines=black_image(pixels), feature_mask=patches, n_samples=40)
        assert weights.shape == pixels.shape and torch.isfinite(weights).all()


def test_projection_errors():
    with pytest.raises(ValueError, match="side: expected 'a'"):
        first_order_projection(torch.zeros(1, 2, 3), side="text")
    with pytest.raises(ValueError, match="interactions: expected a"):
        first_order_projection(torch.zeros(2, 3))


def test_the_first_order_map_and_explain_under_inference_mode_equal_their_results_outside(tmp_path):
    """Captum's LayerIntegratedGradients recorded nothing under the caller's
    torch.inference_mode() and refused the tensors made there; explain_pair loaded its
    model there, so no gradient could flow through it."""
    import torch

    from captum_bilinear.explain import explain_pair
    from captum_bilinear.zoo import generate_scene

    path = str(tmp_path / "scene.png")
    generate_scene(3, mode="full").pil().save(path)
    expected = explain_pair(path, "a red circle", n_steps=4, show_progress=False)
    with torch.inference_mode():
        got = explain_pair(path, "a red circle", n_steps=4, show_progress=False)
    assert expected.first_order.abs().max() > 1e-3
    torch.testing.assert_close(got.interactions, expected.interactions, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(got.first_order, expected.first_order, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("layer", ["embeddings", 1])
def test_first_order_map_is_captums_lig_of_the_caption_conditioned_similarity(pixels, layer):
    """explain's first-order map (the caption as one group of BII's players, first_b +
    A.sum(0)) against Captum's LayerIntegratedGradients of the conditioned similarity from
    the black image, at the same Gauss-Legendre nodes (the caption side's quadrature is
    converged on this model, so only the image side's nodes matter)."""
    from captum_bilinear.first_order import first_order_map
    from captum_bilinear.selection import patch_grid

    model = make_clip(dtype=torch.float64)
    pixel_values, input_ids = pixels.double(), caption(320, 1125, 539)
    layers = ((model.text_model.embeddings, model.vision_model.embeddings) if layer == "embeddings"
              else clip_layers(model, layer))
    first = first_order_map(model, layers, (input_ids, pixel_values), (None, None), n_steps=32, has_cls=True,
                            grid_size=(4, 4))
    forward = ConditionedSimilarity(model, input_ids, side="b")
    expected = LayerIntegratedGradients(forward, layers[1]).attribute(
        pixel_values, baselines=black_image(pixel_values), n_steps=32).sum(-1)[0]
    torch.testing.assert_close(first, patch_grid(expected, (4, 4)), rtol=1e-6, atol=1e-9)
    auto = first_order_map(model, layers, (input_ids, pixel_values), (None, None), n_steps="auto", has_cls=True,
                           grid_size=(4, 4), tolerance=1e-6)
    torch.testing.assert_close(auto, first, rtol=0, atol=1e-6 * float(first.abs().max()))
