"""TokenPatchSimilarity (ITSM) against per-token embeddings computed from HF hidden states."""

import pytest
import torch
import torch.nn.functional as F
from conftest import caption, make_clip, make_siglip

from captum_bilinear import TokenPatchSimilarity


@pytest.mark.parametrize("variant, index", [("output", -1), ("hidden", 1)])
def test_equals_projected_hidden_state_cosines(variant, index, pixels):
    model = make_clip()
    input_ids = caption(320, 1125, 539)
    layer = (model.text_model.encoder.layers[index], model.vision_model.encoder.layers[index])
    A = TokenPatchSimilarity(model, layer, variant=variant).attribute((input_ids, pixels))
    with torch.no_grad():
        text_states = model.text_model(input_ids=input_ids, output_hidden_states=True).hidden_states
        image_states = model.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states
        # hidden_states[0] is the embedding output, hidden_states[i + 1] layer i's output.
        position = index + 1 if index >= 0 else index
        tokens = F.normalize(model.text_projection(model.text_model.final_layer_norm(text_states[position])), dim=-1)
        patches = F.normalize(model.visual_projection(model.vision_model.post_layernorm(image_states[position])), dim=-1)
    torch.testing.assert_close(A, tokens @ patches.transpose(1, 2), rtol=1e-5, atol=1e-6)
    assert A.shape == (1, 5, 17)


def test_output_variant_differs_from_hidden(pixels):
    model = make_clip()
    layer = (model.text_model.encoder.layers[0], model.vision_model.encoder.layers[0])
    inputs = (caption(320, 1125), pixels)
    output = TokenPatchSimilarity(model, layer, "output").attribute(inputs)
    hidden = TokenPatchSimilarity(model, layer, "hidden").attribute(inputs)
    assert not torch.allclose(output, hidden)


def test_errors():
    model = make_clip()
    layer = (model.text_model.encoder.layers[0], model.vision_model.encoder.layers[0])
    with pytest.raises(ValueError, match="variant: expected 'output'"):
        TokenPatchSimilarity(model, layer, variant="O")
    siglip = make_siglip()
    with pytest.raises(ValueError, match="model: side b has no per-position output head"):
        TokenPatchSimilarity(siglip, (siglip.text_model.encoder.layers[0], siglip.vision_model.encoder.layers[0]))
