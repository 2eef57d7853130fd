"""Small models built from configs in code (nothing is downloaded)."""

from typing import Tuple

import pytest
import torch
from transformers import BertConfig, BertModel, CLIPConfig, CLIPModel, SiglipConfig, SiglipModel

BOS, EOS, PAD = 49406, 49407, 1

# The test models are tiny: one thread avoids thread start-up and oversubscription costs
# that dominate their passes (and keeps timings independent of the machine's other load).
torch.set_num_threads(1)


def _float64_causal_masks_for_transformers_4() -> None:
    """transformers 4.x cannot run a float64 CLIP text model: its causal mask is filled
    with ``finfo(float64).min`` in a tensor of the *default* dtype, which overflows
    (``modeling_attn_mask_utils._make_causal_mask``; transformers 5 builds masks another
    way). The oracle tests need float64, so under 4.x a float64 causal mask (CLIP's: no
    cache, no sliding window) is built here in its own dtype: the minimum above the
    diagonal, 0 on and below it. Setting the default dtype around transformers' call
    instead leaked float64 into the whole process when two threads built masks at once
    (the default dtype is global). Nothing in captum_bilinear depends on this."""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return
    from transformers.modeling_attn_mask_utils import AttentionMaskConverter

    make_causal_mask = AttentionMaskConverter._make_causal_mask

    def in_its_own_dtype(input_ids_shape, dtype, device, past_key_values_length=0, sliding_window=None):
        if dtype != torch.float64 or past_key_values_length or sliding_window is not None:
            return make_causal_mask(input_ids_shape, dtype, device, past_key_values_length, sliding_window)
        batch, length = input_ids_shape
        mask = torch.full((length, length), torch.finfo(dtype).min, dtype=dtype, device=device).triu(1)
        return mask[None, None].expand(batch, 1, length, length)

    AttentionMaskConverter._make_causal_mask = staticmethod(in_its_own_dtype)


_float64_causal_masks_for_transformers_4()


def _small(hidden: int = 32, layers: int = 3) -> dict:
    return dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers, num_attention_heads=2)


def make_clip(seed: int = 0, dtype: torch.dtype = torch.float32, layers: int = 3, image_size: int = 32) -> CLIPModel:
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=_small(layers=layers),
        vision_config=dict(_small(layers=layers), image_size=image_size, patch_size=8),
        projection_dim=16,
    )
    return CLIPModel(config).to(dtype).eval()


def make_siglip(seed: int = 0, dtype: torch.dtype = torch.float32) -> SiglipModel:
    torch.manual_seed(seed)
    config = SiglipConfig(
        text_config=dict(_small(), max_position_embeddings=16, vocab_size=99, bos_token_id=97, eos_token_id=98, pad_token_id=1),
        vision_config=dict(_small(), image_size=32, patch_size=8),
    )
    return SiglipModel(config).to(dtype).eval()


def make_bert(seed: int = 0, dtype: torch.dtype = torch.float32) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64)
    return BertModel(config, add_pooling_layer=False).to(dtype).eval()


def features(output) -> torch.Tensor:
    """An embedding from ``get_text_features`` / ``get_image_features``: a tensor in
    transformers 4.x, the ``pooler_output`` of a ``BaseModelOutputWithPooling`` in 5.x."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def caption(*tokens: int) -> torch.Tensor:
    """A one-row CLIP caption [BOS, tokens..., EOS]."""
    return torch.tensor([[BOS, *tokens, EOS]])


def padded_batch(pixels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two captions of different lengths, the first right-padded (attention mask 0 at its
    last position), and two images: ``(input_ids, attention_mask, pixel_values)``."""
    input_ids = torch.full((2, 5), EOS)
    input_ids[0, :4] = caption(320, 1125)[0]
    input_ids[1] = caption(320, 1125, 539)[0]
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 4] = 0
    return input_ids, attention_mask, torch.cat([pixels, -pixels])


def clip_layers(model, index: int = -2) -> Tuple[torch.nn.Module, torch.nn.Module]:
    return model.text_model.encoder.layers[index], model.vision_model.encoder.layers[index]


@pytest.fixture
def clip() -> CLIPModel:
    return make_clip()


@pytest.fixture
def pixels() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(1, 3, 32, 32)
