"""HuggingFace ``CLIPModel`` and ``SiglipModel`` as :class:`~captum_bilinear.DualEncoder`.

Side a is the text (``input_ids``; additional forward arguments ``attention_mask``,
``position_ids``), side b the image (``pixel_values``; additional argument
``interpolate_pos_encoding``); the similarity is the cosine of the projected embeddings
(scale 1, the logit scale left out). Default references: ``[BOS, PAD..., EOS]`` of
each caption's length with its EOS where the caption has it (SigLIP: every non-special
token replaced by PAD), and a black image in the model's normalized pixel space.
Captions are padded on the right (left padding is refused), as HF's CLIP tokenizers do.
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from captum_bilinear.adapters._checks import (
    check_attention_mask,
    check_pixels,
    check_same_shape,
    check_token_ids,
    pair_size,
)
from captum_bilinear.encoders import DualEncoder
from captum_bilinear.references import (
    CLIP_IMAGE_MEAN,
    CLIP_IMAGE_STD,
    SIGLIP_IMAGE_MEAN,
    SIGLIP_IMAGE_STD,
    black_image,
    first_positions_of,
    special_token_reference,
    text_reference,
)


def _hf_dual_encoder_classes() -> Tuple[type, ...]:
    import transformers

    names = ("CLIPModel", "SiglipModel")
    return tuple(getattr(transformers, name) for name in names if hasattr(transformers, name))


def is_supported_hf_model(model: Any) -> bool:
    """Whether ``model`` is a HuggingFace model this adapter wraps (``CLIPModel``,
    ``SiglipModel``).

    Example:
        >>> is_supported_hf_model(torch.nn.Linear(2, 2))
        False
    """
    return isinstance(model, nn.Module) and isinstance(model, _hf_dual_encoder_classes())


def _attention_mask_positions(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Optional[Tensor]:
    """The text side's attention mask (the first additional forward argument), if given."""
    mask = extra[0] if extra else None
    return mask.to(torch.bool) if isinstance(mask, Tensor) else None


def _clip_end_positions(input_ids: Tensor, eos_token_id: int) -> Tensor:
    """The position CLIP's text model pools at (see ``CLIPTextTransformer.forward``)."""
    if eos_token_id == 2:  # legacy configs: the first maximal id
        return input_ids.argmax(dim=-1)
    return first_positions_of(input_ids, eos_token_id)


def _check_text_arguments(
    text_config: Any, inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]
) -> Tensor:
    """Token ids, baseline ids and ``(attention_mask, position_ids)`` of a HF text tower."""
    limits = dict(vocab_size=text_config.vocab_size, max_length=text_config.max_position_embeddings)
    input_ids = check_token_ids(inputs, **limits)
    if baselines is not None:
        check_same_shape(check_token_ids(baselines, name="baselines[0]", **limits), input_ids)
    if len(extra) > 2:
        raise TypeError(
            f"additional_forward_args[0]: the text side takes (attention_mask, position_ids), got {len(extra)} arguments"
        )
    check_attention_mask(extra[0] if extra else None, input_ids)
    position_ids = extra[1] if len(extra) > 1 else None
    if position_ids is not None and (not isinstance(position_ids, Tensor) or position_ids.shape[-1] != input_ids.shape[1]):
        raise ValueError(
            f"additional_forward_args[0] (position_ids): expected a Tensor of {input_ids.shape[1]} positions, got "
            f"{tuple(position_ids.shape) if isinstance(position_ids, Tensor) else type(position_ids).__name__}"
        )
    return input_ids


def _image_side(model: nn.Module, image_mean: Sequence[float], image_std: Sequence[float]) -> Tuple[Any, Any, Any]:
    vision_config = model.config.vision_config
    channels = vision_config.num_channels
    size = pair_size(vision_config.image_size)

    def encode_image(pixel_values: Tensor, interpolate_pos_encoding: bool = False) -> Any:
        # transformers < 4.46 has no interpolate_pos_encoding: pass it only when asked for
        extra = {"interpolate_pos_encoding": True} if interpolate_pos_encoding else {}
        return model.get_image_features(pixel_values=pixel_values, **extra)

    def reference_image(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        return (black_image(inputs[0], image_mean, image_std),)

    def check_image(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]) -> None:
        if len(extra) > 1 or (extra and extra[0] is not None and not isinstance(extra[0], bool)):
            raise ValueError(
                "additional_forward_args[1]: the image side takes no attention mask; its only additional "
                f"argument is interpolate_pos_encoding (a bool), got {tuple(type(x).__name__ for x in extra)}"
            )
        interpolate = bool(extra and extra[0])
        hint = "resize them with the model's image processor, or pass additional_forward_args=(..., (True,)) for interpolate_pos_encoding"
        check_pixels(inputs, channels, image_size=None if interpolate else size, resize_hint=hint)
        if baselines is not None:
            check_pixels(baselines, channels, name="baselines[1]")

    return encode_image, reference_image, check_image


def _encode_text(model: nn.Module) -> Any:
    def encode_text(input_ids: Tensor, attention_mask: Optional[Tensor] = None, position_ids: Optional[Tensor] = None) -> Any:
        return model.get_text_features(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)

    return encode_text


def _clip_text(model: nn.Module) -> Dict[str, Any]:
    """CLIP's text reference, text check and per-position heads."""
    text_config = model.config.text_config
    eos_token_id = text_config.eos_token_id
    pad_token_id = text_config.pad_token_id

    def reference_text(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        input_ids = inputs[0]
        if pad_token_id is None or pad_token_id == eos_token_id:
            raise ValueError(
                "baselines[0]: the model's config has no pad_token_id distinct from its EOS id; "
                "pass a text baseline explicitly"
            )
        return (text_reference(input_ids, pad_token_id, _clip_end_positions(input_ids, eos_token_id)),)

    def check_text(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]) -> None:
        input_ids = _check_text_arguments(text_config, inputs, baselines, extra)
        ends = _clip_end_positions(input_ids, eos_token_id)
        if bool((ends < 0).any()):
            row = int((ends < 0).nonzero()[0])
            raise ValueError(
                f"inputs[0]: input_ids row {row} has no EOS token (id {eos_token_id}); CLIP pools at the EOS position"
            )
        if baselines is not None:
            baseline_ends = _clip_end_positions(baselines[0], eos_token_id)
            if not torch.equal(baseline_ends, ends):
                raise ValueError(
                    "baselines[0]: the text baseline's EOS positions "
                    f"{baseline_ends.tolist()} differ from the input's {ends.tolist()}; CLIP pools at the EOS "
                    "position, so a reference must keep it (e.g. [BOS, PAD..., EOS])"
                )

    return dict(
        reference_a=reference_text,
        check_a=check_text,
        token_head_a=lambda hidden: model.text_projection(model.text_model.final_layer_norm(hidden)),
        token_head_b=lambda hidden: model.visual_projection(model.vision_model.post_layernorm(hidden)),
    )


def _siglip_text(model: nn.Module) -> Dict[str, Any]:
    """SigLIP's text reference, text check and text head (its image head pools by
    attention, so it has no per-patch projection)."""
    text_config = model.config.text_config
    special_ids = [text_config.pad_token_id, text_config.eos_token_id, text_config.bos_token_id]

    def reference_text(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        if text_config.pad_token_id is None:
            raise ValueError("baselines[0]: the model's config has no pad_token_id; pass a text baseline explicitly")
        return (special_token_reference(inputs[0], text_config.pad_token_id, special_ids),)

    def check_text(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]) -> None:
        _check_text_arguments(text_config, inputs, baselines, extra)

    return dict(
        reference_a=reference_text,
        check_a=check_text,
        token_head_a=lambda hidden: model.text_model.head(model.text_model.final_layer_norm(hidden)),
    )


def wrap(
    model: nn.Module,
    image_mean: Optional[Sequence[float]] = None,
    image_std: Optional[Sequence[float]] = None,
    processor: Any = None,
) -> DualEncoder:
    """A HF ``CLIPModel`` / ``SiglipModel`` as a :class:`DualEncoder`.

    Args:
        model: the model, loaded as usual with ``from_pretrained``.
        image_mean, image_std: pixel statistics for the black reference image; default
            those of the model family's processor (or of ``processor``, when given).
        processor: optional ``CLIPProcessor`` / ``SiglipProcessor`` to read them from.

    Example:
        >>> from transformers import CLIPConfig, CLIPModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = CLIPModel(CLIPConfig(text_config=small, vision_config=dict(small, image_size=32, patch_size=8)))
        >>> wrap(model).check_b((torch.zeros(1, 3, 64, 64),), None, ())
        Traceback (most recent call last):
        ...
        ValueError: inputs[1]: expected images of 32x32 pixels (the model's image size), got 64x64; ...
    """
    import transformers

    is_siglip = hasattr(transformers, "SiglipModel") and isinstance(model, transformers.SiglipModel)
    image_processor = getattr(processor, "image_processor", processor)
    default_mean, default_std = (SIGLIP_IMAGE_MEAN, SIGLIP_IMAGE_STD) if is_siglip else (CLIP_IMAGE_MEAN, CLIP_IMAGE_STD)
    mean = image_mean if image_mean is not None else getattr(image_processor, "image_mean", None) or default_mean
    std = image_std if image_std is not None else getattr(image_processor, "image_std", None) or default_std
    encode_image, reference_image, check_image = _image_side(model, mean, std)
    return DualEncoder(
        _encode_text(model),
        encode_image,
        reference_b=reference_image,
        check_b=check_image,
        output_layer_a=model.text_model.encoder.layers[-1],
        output_layer_b=model.vision_model.encoder.layers[-1],
        position_mask_a=_attention_mask_positions,
        **(_siglip_text if is_siglip else _clip_text)(model),
    )
