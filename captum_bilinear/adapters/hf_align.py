"""HuggingFace ``AlignModel``: a BERT text tower pooled at ``[CLS]``, an EfficientNet
image tower (convolutional blocks, average-pooled; its pooled features are the image
embedding).

Text (side a): ``input_ids``; additional forward arguments ``(attention_mask,
token_type_ids, position_ids)``; default reference ``[CLS, PAD..., SEP, padding...]``.
Image (side b): ``pixel_values`` of any size (the tower is convolutional), no additional
arguments; default reference a black image as ALIGN's processor makes it (pixels
rescaled to ``[-1, 1]`` without normalization: black is -1).

A block's output ``(batch, C, H, W)`` has ``H * W`` positions, the cells of its feature
map in row-major order, with ``C`` as hidden dimension::

    BilinearIntegratedInteractions(model, (model.text_model.encoder.layer[k], model.vision_model.encoder.blocks[j]))

gives ``A`` of shape ``(batch, tokens, H * W)``; :func:`captum_bilinear.selection.feature_map_grid`
gives ``(H, W)``.
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import torch  # noqa: F401  (the examples use it)

from captum_bilinear.adapters._hf_sides import pixel_side, pixel_statistics, text_side

CLASSES = ("AlignModel",)
#: ALIGN's pixels are ``x / 127.5 - 1``: as a normalization, mean = std = 0.5 (black is -1).
ALIGN_IMAGE_MEAN = (0.5, 0.5, 0.5)
ALIGN_IMAGE_STD = (0.5, 0.5, 0.5)


def layer_lists(model: Any) -> Tuple[Any, Any]:
    """The text tower's BERT layers and the image tower's EfficientNet blocks.

    Example:
        >>> from transformers import AlignConfig, AlignModel
        >>> model = AlignModel(AlignConfig(
        ...     text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
        ...     vision_config=dict(image_size=64, width_coefficient=0.1, depth_coefficient=0.1), projection_dim=32))
        >>> [len(layers) for layers in layer_lists(model)]
        [2, 7]
    """
    return model.text_model.encoder.layer, model.vision_model.encoder.blocks


def sides(model: Any, image_mean: Optional[Sequence[float]], image_std: Optional[Sequence[float]],
          processor: Any) -> Dict[str, Any]:
    """The DualEncoder arguments of an ALIGN model.

    Example:
        >>> from transformers import AlignConfig, AlignModel
        >>> model = AlignModel(AlignConfig(
        ...     text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
        ...     vision_config=dict(image_size=64, width_coefficient=0.1, depth_coefficient=0.1), projection_dim=32))
        >>> sides(model, None, None, None)["reference_b"]((torch.zeros(1, 3, 2, 2),), ())[0][0, :, 0, 0]
        tensor([-1., -1., -1.])
    """
    mean, std = pixel_statistics(processor, image_mean, image_std, ALIGN_IMAGE_MEAN, ALIGN_IMAGE_STD)
    return dict(
        **text_side(model, model.config.text_config, names=("attention_mask", "token_type_ids", "position_ids")),
        **pixel_side(model, model.config.vision_config, mean, std, fixed_size=False),
        towers=(model.text_model, model.vision_model),
    )
