"""HuggingFace ``SiglipModel``: a bidirectional text tower pooled at its last position
(captions padded to the full length, as SigLIP was trained), a ViT image tower without
class token pooled by attention.

Text (side a): ``input_ids``; additional forward arguments ``(attention_mask,
position_ids)``; default reference: every token but PAD / EOS / BOS replaced by PAD.
Image (side b): ``pixel_values`` (``interpolate_pos_encoding`` as additional argument),
default reference a black image (SigLIP's processor normalizes with mean = std = 0.5).
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import torch  # noqa: F401  (the examples use it)
from torch import Tensor

from captum_bilinear.adapters._hf_sides import pixel_side, pixel_statistics, text_side
from captum_bilinear.references import SIGLIP_IMAGE_MEAN, SIGLIP_IMAGE_STD, special_token_reference

CLASSES = ("SiglipModel",)


def layer_lists(model: Any) -> Tuple[Any, Any]:
    """The text and image towers' encoder layers (SigLIP and SigLIP-2).

    Example:
        >>> from transformers import SiglipConfig, SiglipModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = SiglipModel(SiglipConfig(text_config=small, vision_config=dict(small, image_size=32, patch_size=8)))
        >>> [len(layers) for layers in layer_lists(model)]
        [2, 2]
    """
    return model.text_model.encoder.layers, model.vision_model.encoder.layers


def special_reference(text_config: Any) -> Any:
    """SigLIP's text reference: every token but the config's special ones replaced by PAD.

    Example:
        >>> from types import SimpleNamespace
        >>> reference = special_reference(SimpleNamespace(pad_token_id=1, eos_token_id=98, bos_token_id=97))
        >>> reference(torch.tensor([[5, 6, 98, 1]]), ())
        tensor([[ 1,  1, 98,  1]])
    """
    special_ids = [text_config.pad_token_id, text_config.eos_token_id, text_config.bos_token_id]

    def reference(input_ids: Tensor, extra: Any) -> Tensor:
        if text_config.pad_token_id is None:
            raise ValueError("baselines[0]: the model's config has no pad_token_id; pass a text baseline explicitly")
        return special_token_reference(input_ids, text_config.pad_token_id, special_ids)

    return reference


def sides(model: Any, image_mean: Optional[Sequence[float]], image_std: Optional[Sequence[float]],
          processor: Any) -> Dict[str, Any]:
    """The DualEncoder arguments of a SigLIP model.

    Example:
        >>> from transformers import SiglipConfig, SiglipModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = SiglipModel(SiglipConfig(text_config=small, vision_config=dict(small, image_size=32, patch_size=8)))
        >>> sides(model, None, None, None)["reference_b"]((torch.zeros(1, 3, 2, 2),), ())[0][0, :, 0, 0]
        tensor([-1., -1., -1.])
    """
    text_config = model.config.text_config
    mean, std = pixel_statistics(processor, image_mean, image_std, SIGLIP_IMAGE_MEAN, SIGLIP_IMAGE_STD)
    return dict(
        **text_side(model, text_config, reference=special_reference(text_config)),
        **pixel_side(model, model.config.vision_config, mean, std),
        token_head_a=lambda hidden: model.text_model.head(model.text_model.final_layer_norm(hidden)),
        output_layer_a=model.text_model.encoder.layers[-1],
        output_layer_b=model.vision_model.encoder.layers[-1],
        towers=(model.text_model, model.vision_model),
    )
