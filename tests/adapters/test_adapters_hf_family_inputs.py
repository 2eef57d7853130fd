"""The families' own inputs: SigLIP-2's patch masks and shapes checked before any pass,
references read from the processors users pass (ALIGN's rescale offset, CLAP's
feature extractor), arguments passed by name whatever a transformers version's order
(AltCLIP's token_type_ids), and CLAP with the released models' ReLU heads."""

import numpy as np
import pytest
import torch
import transformers
from hf_families import make_align, make_altclip, make_clap, make_siglip2

from captum_bilinear import BilinearIntegratedInteractions, as_dual_encoder


def refused_before_any_pass(family, inputs, extra, message):
    calls = []
    handles = [m.register_forward_hook(lambda *_: calls.append(1)) for m in family.model.modules()]
    try:
        with pytest.raises(ValueError, match=message):
            BilinearIntegratedInteractions(family.model, family.layers()).attribute(
                inputs, additional_forward_args=extra, n_steps=2)
    finally:
        for handle in handles:
            handle.remove()
    assert not calls


def test_siglip2_patches_masks_and_shapes_are_checked_before_any_pass():
    family = make_siglip2()
    mask, shapes = family.extra_b
    ids, pixels = family.inputs
    refused_before_any_pass(family, (ids, pixels[..., :40]), (None, (mask, shapes)),
                            r"inputs\[1\]: expected SigLIP-2 pixel_values as its processor gives them, a float Tensor "
                            r"\(batch, max_num_patches, 48\)")
    refused_before_any_pass(family, (ids, pixels), (None, (mask,)),
                            r"additional_forward_args\[1\]: expected \(pixel_attention_mask, spatial_shapes\)")
    refused_before_any_pass(family, (ids, pixels), (None, (mask, torch.tensor([[3, 4], [4, 4]]))),
                            r"spatial_shapes\): grids \[\[3, 4\], \[4, 4\]\] must be positive and have at most the 12")
    swapped = mask.flip(0)
    refused_before_any_pass(family, (ids, pixels), (None, (swapped, shapes)),
                            r"pixel_attention_mask\): row 0 does not mark exactly the first 12 slots")


def test_siglip2_default_image_reference_is_black_patches_and_padding_stays():
    family = make_siglip2()
    (reference,) = as_dual_encoder(family.model).default_baselines_b((family.other,), family.extra_b)
    torch.testing.assert_close(reference, family.reference_other)


@pytest.mark.parametrize("settings", [
    dict(rescale_factor=1 / 127.5, rescale_offset=True, do_normalize=False, include_top=False),  # ALIGN's
    dict(rescale_factor=1 / 127.5, rescale_offset=True, do_normalize=False, include_top=True),
    dict(do_normalize=True, image_mean=[0.2, 0.4, 0.6], image_std=[0.5, 0.25, 0.5], include_top=False),
    dict(do_normalize=True, image_mean=[0.2, 0.4, 0.6], image_std=[0.5, 0.25, 0.5], include_top=True),
])
def test_align_black_is_what_its_image_processor_makes_of_black(settings):
    """The default image reference read from ALIGN's EfficientNetImageProcessor (rescale
    offset, optional normalization, include_top's extra division) against the
    processor's own output for a black image."""
    family = make_align()
    processor = transformers.EfficientNetImageProcessor(**settings)
    made = processor(images=np.zeros((300, 300, 3), dtype=np.uint8), return_tensors="pt")["pixel_values"]
    black = as_dual_encoder(family.model, processor=processor).default_baselines_b((family.other,), ())[0]
    torch.testing.assert_close(black[0, :, :2, :2], made[0, :, :2, :2].to(black.dtype), rtol=1e-6, atol=1e-6)


def test_align_default_black_is_minus_one():
    family = make_align()
    assert torch.equal(as_dual_encoder(family.model).default_baselines_b((family.other,), ())[0],
                       torch.full_like(family.other, -1.0))


def test_clap_silence_is_the_feature_extractors():
    family = make_clap()
    extractor = transformers.ClapFeatureExtractor(feature_size=16)
    silence = extractor(np.zeros(48000), sampling_rate=48000, return_tensors="pt")["input_features"]
    for processor in (None, extractor):
        (reference,) = as_dual_encoder(family.model, processor=processor).default_baselines_b((family.other,), ())
        assert torch.equal(reference, torch.full_like(family.other, float(silence.flatten()[0])))
        assert torch.equal(silence.unique(), reference.unique())


def test_clap_with_relu_heads_keeps_the_identity_exact():
    """The released CLAP models' projection heads use ReLU: the identity is the model's
    own whatever the activation, and the interactions converge to it as nodes are added
    (kinks on the path slow Gauss-Legendre down)."""
    family = make_clap()
    for head in (family.model.text_projection, family.model.audio_projection):
        head.activation = torch.nn.ReLU()
    bii = BilinearIntegratedInteractions(family.model, family.layers())
    terms = bii.similarity_terms(family.inputs, additional_forward_args=family.extra)
    torch.testing.assert_close(terms.interaction, family.identity(), rtol=1e-4, atol=1e-6)
    errors = [float((bii.attribute(family.inputs, additional_forward_args=family.extra, n_steps=n).sum((1, 2))
                     - family.identity()).abs().max()) for n in (8, 128)]
    assert errors[1] < errors[0] / 4


def test_altclip_arguments_go_by_name_whatever_the_versions_order():
    """transformers 4.45's AltCLIP takes (attention_mask, position_ids, token_type_ids),
    5.x (attention_mask, token_type_ids, position_ids): the adapter's order is the
    latter in both."""
    family = make_altclip()
    bii = BilinearIntegratedInteractions(family.model, family.layers())
    mask = family.attention_mask
    plain = bii.attribute(family.inputs, additional_forward_args=((mask,), None), n_steps=4)
    typed = bii.attribute(family.inputs, additional_forward_args=((mask, torch.zeros_like(mask)), None), n_steps=4)
    torch.testing.assert_close(plain, typed)
    positions = torch.arange(2, 7).expand(2, 5)  # RoBERTa-style positions (padding_idx 1 + 1 + i)
    with_positions = bii.attribute(family.inputs, additional_forward_args=((mask, None, positions), None), n_steps=4)
    own = family.model.get_text_features(input_ids=family.input_ids, attention_mask=mask, position_ids=positions)
    dual = as_dual_encoder(family.model)
    torch.testing.assert_close(dual.embed_a(family.input_ids, mask, None, positions),
                               torch.nn.functional.normalize(own if isinstance(own, torch.Tensor) else own.pooler_output,
                                                             dim=-1))
    assert with_positions.shape == plain.shape
