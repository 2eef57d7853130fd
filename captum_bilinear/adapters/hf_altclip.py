"""HuggingFace ``AltCLIPModel``: an XLM-RoBERTa text tower pooled at its first token
(``<s>``), CLIP's ViT image tower.

Text (side a): ``input_ids``; additional forward arguments ``(attention_mask,
token_type_ids, position_ids)``; default reference ``[<s>, <pad>..., </s>, padding...]``
(every token between the first and the last input position replaced by the config's
``pad_token_id``; RoBERTa gives ``<pad>`` tokens its padding position, so the
reference's ``</s>`` sits at another position embedding than the caption's -- an
uninformative reference either way, and the identity is exact). Image (side b) as CLIP's.
Layers: ``(model.text_model.roberta.encoder.layer[k], model.vision_model.encoder.layers[k])``.
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import torch  # noqa: F401  (the examples use it)

from captum_bilinear.adapters._hf_sides import pixel_side, pixel_statistics, text_side
from captum_bilinear.references import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD

CLASSES = ("AltCLIPModel",)


def layer_lists(model: Any) -> Tuple[Any, Any]:
    """The text tower's RoBERTa layers (``.layers`` in transformers 5, ``.layer`` in 4)
    and the image tower's encoder layers.

    Example:
        >>> from transformers import AltCLIPConfig, AltCLIPModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = AltCLIPModel(AltCLIPConfig(text_config=dict(small, vocab_size=99, project_dim=32),
        ...                                    vision_config=dict(small, image_size=32, patch_size=8)))
        >>> [len(layers) for layers in layer_lists(model)]
        [2, 2]
    """
    encoder = model.text_model.roberta.encoder
    return getattr(encoder, "layers", None) or encoder.layer, model.vision_model.encoder.layers


def sides(model: Any, image_mean: Optional[Sequence[float]], image_std: Optional[Sequence[float]],
          processor: Any) -> Dict[str, Any]:
    """The DualEncoder arguments of an AltCLIP model.

    Example:
        >>> from transformers import AltCLIPConfig, AltCLIPModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = AltCLIPModel(AltCLIPConfig(text_config=dict(small, vocab_size=99, project_dim=32),
        ...                                    vision_config=dict(small, image_size=32, patch_size=8)))
        >>> ids, mask = torch.tensor([[0, 11, 12, 2, 1]]), torch.tensor([[1, 1, 1, 1, 0]])
        >>> sides(model, None, None, None)["reference_a"]((ids,), (mask,))   # <s> and </s> kept, padding stays
        (tensor([[0, 1, 1, 2, 1]]),)
    """
    mean, std = pixel_statistics(processor, image_mean, image_std, CLIP_IMAGE_MEAN, CLIP_IMAGE_STD)
    return dict(
        **text_side(model, model.config.text_config, names=("attention_mask", "token_type_ids", "position_ids")),
        **pixel_side(model, model.config.vision_config, mean, std),
        towers=(model.text_model, model.vision_model),
    )
