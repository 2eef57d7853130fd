"""HuggingFace ``CLIPModel`` and ``MetaClip2Model``: causal text towers pooled at the
end-of-text token, ViT image towers with a class token.

Text (side a): ``input_ids``; additional forward arguments ``(attention_mask,
position_ids)``; default reference ``[BOS, PAD..., EOS, padding...]`` of each caption's
length, its EOS where the caption has it (the config's ``pad_token_id`` must differ from
its EOS id: HF's CLIP tokenizer pads with EOS). Image (side b): ``pixel_values`` of the
config's size (``interpolate_pos_encoding`` as additional argument), default reference a
black image. Layers: ``(model.text_model.encoder.layers[k], model.vision_model.encoder.layers[k])``.
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from captum_bilinear.adapters._hf_sides import pixel_side, pixel_statistics, text_side
from captum_bilinear.references import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD, first_positions_of, text_reference

CLASSES = ("CLIPModel", "MetaClip2Model")


def end_positions(input_ids: Tensor, eos_token_id: int, legacy_argmax: bool) -> Tensor:
    """The position the text tower pools at (``CLIPTextTransformer.forward``): the first
    EOS, or in CLIP's legacy configs (EOS id 2) the first maximal id.

    Example:
        >>> end_positions(torch.tensor([[49406, 320, 49407, 49407]]), 49407, legacy_argmax=False)
        tensor([2])
    """
    if legacy_argmax:
        return input_ids.argmax(dim=-1)
    return first_positions_of(input_ids, eos_token_id)


def layer_lists(model: Any) -> Tuple[Any, Any]:
    """The text and image towers' encoder layers (``layers[k]`` is a layer to attribute).

    Example:
        >>> from transformers import CLIPConfig, CLIPModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = CLIPModel(CLIPConfig(text_config=small, vision_config=dict(small, image_size=32, patch_size=8)))
        >>> [len(layers) for layers in layer_lists(model)]
        [2, 2]
    """
    return model.text_model.encoder.layers, model.vision_model.encoder.layers


def sides(model: Any, image_mean: Optional[Sequence[float]], image_std: Optional[Sequence[float]],
          processor: Any) -> Dict[str, Any]:
    """The DualEncoder arguments of a CLIP-architecture model.

    Example:
        >>> from transformers import CLIPConfig, CLIPModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = CLIPModel(CLIPConfig(text_config=small, vision_config=dict(small, image_size=32, patch_size=8)))
        >>> arguments = sides(model, None, None, None)
        >>> arguments["reference_a"]((torch.tensor([[49406, 320, 1125, 49407]]),), ())
        (tensor([[49406,     1,     1, 49407]]),)
    """
    text_config = model.config.text_config
    eos_token_id, pad_token_id = text_config.eos_token_id, text_config.pad_token_id
    legacy = type(model).__name__ == "CLIPModel" and eos_token_id == 2

    def reference(input_ids: Tensor, extra: Any) -> Tensor:
        if pad_token_id is None or pad_token_id == eos_token_id:
            raise ValueError("baselines[0]: the model's config has no pad_token_id distinct from its EOS id; "
                             "pass a text baseline explicitly")
        return text_reference(input_ids, pad_token_id, end_positions(input_ids, eos_token_id, legacy))

    def check(input_ids: Tensor, baseline_ids: Optional[Tensor]) -> None:
        ends = end_positions(input_ids, eos_token_id, legacy)
        if bool((ends < 0).any()):
            raise ValueError(f"inputs[0]: input_ids row {int((ends < 0).nonzero()[0])} has no EOS token "
                             f"(id {eos_token_id}); CLIP pools at the EOS position")
        if baseline_ids is not None and not torch.equal(end_positions(baseline_ids, eos_token_id, legacy), ends):
            raise ValueError(
                f"baselines[0]: the text baseline's EOS positions {end_positions(baseline_ids, eos_token_id, legacy).tolist()} "
                f"differ from the input's {ends.tolist()}; CLIP pools at the EOS position, so a reference must keep it "
                "(e.g. [BOS, PAD..., EOS])"
            )

    mean, std = pixel_statistics(processor, image_mean, image_std, CLIP_IMAGE_MEAN, CLIP_IMAGE_STD)
    return dict(
        **text_side(model, text_config, reference=reference, check=check),
        **pixel_side(model, model.config.vision_config, mean, std),
        token_head_a=lambda hidden: model.text_projection(model.text_model.final_layer_norm(hidden)),
        token_head_b=lambda hidden: model.visual_projection(model.vision_model.post_layernorm(hidden)),
        output_layer_a=model.text_model.encoder.layers[-1],
        output_layer_b=model.vision_model.encoder.layers[-1],
        towers=(model.text_model, model.vision_model),
    )
