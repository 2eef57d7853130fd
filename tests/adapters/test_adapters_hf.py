"""HF CLIP / SigLIP through their adapter: bad arguments named before any model pass
(token ids outside the vocabulary, masks of the wrong length or on the image side, 1-D
input_ids, wrong image resolution, captions over the model's length, left padding)."""

import pytest
import torch
from conftest import BOS, EOS, caption, clip_layers, make_clip, make_siglip

from captum_bilinear import BilinearIntegratedInteractions
from captum_bilinear.adapters import ADAPTERS, hf, wrap_model


def forward_calls(model):
    calls = []
    return calls, [m.register_forward_hook(lambda *_: calls.append(1)) for m in model.modules()]


def attribute_refused(model, inputs, extra, error, message):
    bii = BilinearIntegratedInteractions(model, clip_layers(model) if hasattr(model, "text_projection") else
                                         (model.text_model.encoder.layers[0], model.vision_model.encoder.layers[0]))
    calls, handles = forward_calls(model)
    try:
        with pytest.raises(error, match=message):
            bii.attribute(inputs, additional_forward_args=extra, n_steps=2)
    finally:
        for handle in handles:
            handle.remove()
    assert not calls, "refused only after a model pass"


@pytest.fixture
def ids():
    return torch.cat([caption(320, 1125, 539), caption(320, 1125, 539)])


@pytest.fixture
def images(pixels):
    return pixels.repeat(2, 1, 1, 1)


def test_token_ids_outside_the_vocabulary(ids, images):
    bad = ids.clone()
    bad[1, 2] = 49408
    attribute_refused(make_clip(), (bad, images), None, ValueError,
                      r"inputs\[0\]: token id 49408 \(row 1, position 2\) is outside the model's vocabulary of 49408")


def test_attention_mask_of_the_wrong_length(ids, images):
    attribute_refused(make_clip(), (ids, images), ((torch.ones(2, 4, dtype=torch.long),), None), ValueError,
                      r"additional_forward_args\[0\] \(attention_mask\): expected the shape of input_ids \(2, 5\), "
                      r"got \(2, 4\)")


def test_attention_mask_on_the_image_side(ids, images):
    attribute_refused(make_clip(), (ids, images), (None, (torch.ones_like(ids),)), ValueError,
                      r"additional_forward_args\[1\]: the image side takes no attention mask")


def test_one_dimensional_input_ids_are_not_a_batch_mismatch(ids, pixels):
    attribute_refused(make_clip(), (ids[0], pixels), None, ValueError,
                      r"inputs\[0\]: expected input_ids of shape \(batch, length\), got one sequence of shape \(5,\); "
                      r"add the batch dimension")


def test_wrong_image_resolution(ids):
    attribute_refused(make_clip(), (ids, torch.randn(2, 3, 64, 48)), None, ValueError,
                      r"inputs\[1\]: expected images of 32x32 pixels \(the model's image size\), got 64x48")


def test_captions_over_the_models_length(images):
    long = torch.tensor([[BOS] + [320] * 80 + [EOS]] * 2)
    attribute_refused(make_clip(), (long, images), None, ValueError,
                      r"inputs\[0\]: 82 tokens, more than the model's maximum of 77 positions")


def test_left_padding_is_refused(ids, images):
    mask = torch.ones_like(ids)
    padded = ids.clone()
    padded[1] = torch.tensor([EOS, EOS, BOS, 320, EOS])
    mask[1, :2] = 0
    attribute_refused(make_clip(), (padded, images), ((mask,), None), ValueError,
                      r"additional_forward_args\[0\] \(attention_mask\): row 1 has padding before its input "
                      r"\(left padding\).*pad on the right")


def test_right_padding_is_fine_and_gives_the_mask_as_positions(images):
    model = make_clip()
    ids = torch.tensor([[BOS, 320, 1125, 539, EOS], [BOS, 320, EOS, EOS, EOS]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    bii = BilinearIntegratedInteractions(model, clip_layers(model))
    A = bii.attribute((ids, images), additional_forward_args=((mask,), None), n_steps=4)
    single = bii.attribute((ids[1:, :3], images[1:]), n_steps=4)
    torch.testing.assert_close(A[1, :3], single[0], rtol=1e-4, atol=1e-7)
    assert torch.equal(bii.dual_encoder.input_positions("a", (ids,), (mask,)), mask.bool())


def test_siglip_checks_its_own_vocabulary_and_length(pixels):
    model = make_siglip()
    attribute_refused(model, (torch.tensor([[5, 120, 98]]), pixels), None, ValueError,
                      r"inputs\[0\]: token id 120 .* vocabulary of 99")
    attribute_refused(model, (torch.full((1, 17), 5), pixels), None, ValueError,
                      r"inputs\[0\]: 17 tokens, more than the model's maximum of 16")


def test_the_hf_adapter_is_registered_first():
    assert ADAPTERS[0][2] is hf.wrap
    with pytest.raises(TypeError, match=r"model: expected a transformers dual encoder \(CLIPModel, .*\), an open_clip"):
        wrap_model(torch.nn.Linear(2, 2))
