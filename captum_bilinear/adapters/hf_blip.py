"""HuggingFace BLIP's contrastive (image-text contrastive, ITC) embeddings:
``BlipForImageTextRetrieval`` through its ``text_proj`` / ``vision_proj`` heads (what
``model(..., use_itm_head=False)`` scores), and ``BlipModel`` through its
``get_text_features`` / ``get_image_features``.

Text (side a): ``input_ids``; additional forward arguments ``(attention_mask,
position_ids)``; a bidirectional BERT tower pooled at its first token; default reference
``[CLS, PAD..., SEP, padding...]``. Image (side b): ``pixel_values`` of the config's size
(``interpolate_pos_encoding`` as additional argument), pooled at the class token;
default reference a black image. Layers of the retrieval model:
``(model.text_encoder.encoder.layer[k], model.vision_model.encoder.layers[k])``
(``BlipModel``: ``model.text_model.encoder.layer[k]``).
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import torch  # noqa: F401  (the examples use it)
from torch import Tensor

from captum_bilinear.adapters._hf_sides import pixel_side, pixel_statistics, text_side
from captum_bilinear.references import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD

CLASSES = ("BlipForImageTextRetrieval", "BlipModel")


def layer_lists(model: Any) -> Tuple[Any, Any]:
    """The text encoder's BERT layers and the image tower's encoder layers.

    Example:
        >>> from transformers import BlipConfig, BlipForImageTextRetrieval
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = BlipForImageTextRetrieval(BlipConfig(text_config=small,
        ...                                              vision_config=dict(small, image_size=32, patch_size=8)))
        >>> [len(layers) for layers in layer_lists(model)]
        [2, 2]
    """
    text = model.text_model if type(model).__name__ == "BlipModel" else model.text_encoder
    return text.encoder.layer, model.vision_model.encoder.layers


def _retrieval_encoders(model: Any) -> Dict[str, Any]:
    def encode_text(input_ids: Tensor, attention_mask: Optional[Tensor] = None,
                    position_ids: Optional[Tensor] = None) -> Tensor:
        hidden = model.text_encoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)[0]
        return model.text_proj(hidden[:, 0, :])

    def encode_image(pixel_values: Tensor, interpolate_pos_encoding: Optional[bool] = None) -> Tensor:
        extra = {"interpolate_pos_encoding": True} if interpolate_pos_encoding else {}
        hidden = model.vision_model(pixel_values=pixel_values, **extra)[0]
        return model.vision_proj(hidden[:, 0, :])

    return dict(text=encode_text, image=encode_image, text_tower=model.text_encoder)


def sides(model: Any, image_mean: Optional[Sequence[float]], image_std: Optional[Sequence[float]],
          processor: Any) -> Dict[str, Any]:
    """The DualEncoder arguments of a BLIP model's contrastive embeddings.

    Example:
        >>> from transformers import BlipConfig, BlipForImageTextRetrieval
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = BlipForImageTextRetrieval(BlipConfig(text_config=small,
        ...                                              vision_config=dict(small, image_size=32, patch_size=8)))
        >>> sides(model, None, None, None)["encode_a"](torch.tensor([[101, 11, 102]])).shape
        torch.Size([1, 256])
    """
    retrieval = type(model).__name__ != "BlipModel"
    encoders = _retrieval_encoders(model) if retrieval else dict(text=None, image=None, text_tower=model.text_model)
    mean, std = pixel_statistics(processor, image_mean, image_std, CLIP_IMAGE_MEAN, CLIP_IMAGE_STD)
    return dict(
        **text_side(model, model.config.text_config, encode=encoders["text"]),
        **pixel_side(model, model.config.vision_config, mean, std, encode=encoders["image"]),
        towers=(encoders["text_tower"], model.vision_model),
    )
