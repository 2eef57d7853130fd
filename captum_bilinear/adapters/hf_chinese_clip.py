"""HuggingFace ``ChineseCLIPModel``: a BERT text tower pooled at ``[CLS]``, CLIP's ViT
image tower.

Text (side a): ``input_ids``; additional forward arguments ``(attention_mask,
token_type_ids, position_ids)``; default reference ``[CLS, PAD..., SEP, padding...]``
(every token between the first and the last input position replaced by the config's
``pad_token_id``). Image (side b) as CLIP's. Layers:
``(model.text_model.encoder.layer[k], model.vision_model.encoder.layers[k])``.
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import torch  # noqa: F401  (the examples use it)

from captum_bilinear.adapters._hf_sides import pixel_side, pixel_statistics, text_side
from captum_bilinear.references import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD

CLASSES = ("ChineseCLIPModel",)


def layer_lists(model: Any) -> Tuple[Any, Any]:
    """The text tower's BERT layers and the image tower's encoder layers.

    Example:
        >>> from transformers import ChineseCLIPConfig, ChineseCLIPModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = ChineseCLIPModel(ChineseCLIPConfig(text_config=dict(small, vocab_size=200),
        ...                                            vision_config=dict(small, image_size=32, patch_size=8)))
        >>> [len(layers) for layers in layer_lists(model)]
        [2, 2]
    """
    return model.text_model.encoder.layer, model.vision_model.encoder.layers


def sides(model: Any, image_mean: Optional[Sequence[float]], image_std: Optional[Sequence[float]],
          processor: Any) -> Dict[str, Any]:
    """The DualEncoder arguments of a Chinese-CLIP model.

    Example:
        >>> from transformers import ChineseCLIPConfig, ChineseCLIPModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = ChineseCLIPModel(ChineseCLIPConfig(text_config=dict(small, vocab_size=200),
        ...                                            vision_config=dict(small, image_size=32, patch_size=8)))
        >>> sides(model, None, None, None)["reference_a"]((torch.tensor([[101, 11, 12, 102]]),), ())
        (tensor([[101,   0,   0, 102]]),)
    """
    mean, std = pixel_statistics(processor, image_mean, image_std, CLIP_IMAGE_MEAN, CLIP_IMAGE_STD)
    return dict(
        **text_side(model, model.config.text_config, names=("attention_mask", "token_type_ids", "position_ids")),
        **pixel_side(model, model.config.vision_config, mean, std),
        towers=(model.text_model, model.vision_model),
    )
