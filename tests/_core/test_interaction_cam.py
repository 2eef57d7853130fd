"""InteractionCAM against Captum's LayerGradientXActivation, one embedding dimension at a time."""

import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerGradientXActivation
from conftest import EOS, caption, clip_layers, features, make_clip

from captum_bilinear import InteractionCAM


@pytest.mark.parametrize("layer_index", [0, -2])
def test_equals_product_of_captum_gradient_x_activation_maps(layer_index):
    model = make_clip(dtype=torch.float64)
    torch.manual_seed(0)
    input_ids = torch.full((2, 6), EOS)
    input_ids[0, :4] = caption(320, 1125)[0]
    input_ids[1] = caption(320, 1125, 539, 2368)[0]
    attention_mask = (input_ids != EOS).long()
    attention_mask[torch.arange(2), (input_ids == EOS).int().argmax(-1)] = 1
    pixel_values = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    layers = clip_layers(model, layer_index)
    A = InteractionCAM(model, layers).attribute((input_ids, pixel_values), additional_forward_args=((attention_mask,), None))
    assert A.shape == (2, 6, 17)

    def text(ids, mask):
        return F.normalize(features(model.get_text_features(input_ids=ids, attention_mask=mask)), dim=-1)

    def image(px):
        return F.normalize(features(model.get_image_features(pixel_values=px)), dim=-1)

    text_maps = torch.stack([
        LayerGradientXActivation(text, layers[0]).attribute(input_ids, target=k, additional_forward_args=(attention_mask,)).sum(-1)
        for k in range(16)
    ], 1)  # (batch, D, tokens)
    image_maps = torch.stack([
        LayerGradientXActivation(image, layers[1]).attribute(pixel_values, target=k).sum(-1) for k in range(16)
    ], 1)  # (batch, D, positions)
    expected = torch.einsum("bks,bkp->bsp", text_maps, image_maps)
    torch.testing.assert_close(A, expected, rtol=1e-8, atol=1e-12)

    terms = InteractionCAM(model, layers).attribute_terms((input_ids, pixel_values),
                                                          additional_forward_args=((attention_mask,), None))
    torch.testing.assert_close(terms.cross, expected, rtol=1e-8, atol=1e-12)
    assert not terms.has_intercept and not terms.has_first_order
    assert not terms.intercept.any() and not terms.first_a.any() and not terms.first_b.any()
    assert torch.equal(terms.players_a, attention_mask.bool())  # example 0's padding is no player
    assert terms.players_b.all() and terms.players_b.shape == (2, 17)
    assert terms.method == "InteractionCAM" and terms.layers == (
        f"text_model.encoder.layers.{layer_index % 3}", f"vision_model.encoder.layers.{layer_index % 3}")


def test_needs_no_text_reference_and_restores_hooks(pixels):
    model = make_clip()
    model.config.text_config.pad_token_id = EOS  # no usable default text reference
    A = InteractionCAM(model, clip_layers(model)).attribute((caption(320, 1125), pixels))
    assert A.shape == (1, 4, 17)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_layer_whose_scale_the_model_ignores_is_warned_about(pixels):
    """CLIP's vision embeddings feed pre_layrnorm: doubling them changes nothing, so
    gradient x activation is zero at every patch (Captum's LayerGradientXActivation, the
    oracle, says the same) and InteractionCAM's values are round-off; it said nothing."""
    import warnings

    model = make_clip(dtype=torch.float32)
    layers = (model.text_model.embeddings, model.vision_model.embeddings)
    inputs = (caption(320, 1125), pixels)

    def image(px):
        return F.normalize(features(model.get_image_features(pixel_values=px)), dim=-1)

    oracle = LayerGradientXActivation(image, layers[1]).attribute(pixels, target=0).sum(-1)
    at_layer_0 = LayerGradientXActivation(image, clip_layers(model, 0)[1]).attribute(pixels, target=0).sum(-1)
    assert oracle.abs().max() < 1e-3 * at_layer_0.abs().max()  # about zero: LayerNorm's eps only
    with pytest.warns(UserWarning, match=r"a normalization reads layer\[1\] \(vision_model.embeddings\) directly: "
                                         "the embedding changes over 100 times less"):
        A = InteractionCAM(model, layers).attribute(inputs)
    assert A.abs().max() < 1e-3 * InteractionCAM(model, clip_layers(model, 0)).attribute(inputs).abs().max()
    with pytest.warns(UserWarning, match=r"layer\[0\] \(text_model.encoder.layers.2\)"):  # the final LayerNorm
        InteractionCAM(model, clip_layers(model, -1)).attribute(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # an encoder layer below the last: no warning
        InteractionCAM(model, clip_layers(model, 0)).attribute(inputs)
