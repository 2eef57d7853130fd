"""What the HuggingFace families share: calling a model's ``get_*_features`` with the
user's additional forward arguments, the text side of a tokenized caption, and the
image side of a tower that takes ``(batch, channels, height, width)`` pixels.

Additional forward arguments are positional (Captum's convention) and mapped to the
names a family declares, not to the order of the model's signature, which differs
between transformers versions (AltCLIP's ``token_type_ids`` and ``position_ids``).
"""

import inspect
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from captum_bilinear.adapters._checks import (TokenLimits, check_attention_mask, check_pixels, check_same_shape,
                                              check_token_ids)
from captum_bilinear.references import black_image, text_reference

Check = Callable[[Tuple[Tensor, ...], Optional[Tuple[Tensor, ...]], Tuple[Any, ...]], None]


def features_function(method: Callable[..., Any], first: str, names: Sequence[str], side: int) -> Callable[..., Any]:
    """``encode(x, *extra)`` calling ``method(first=x, name=value...)`` with the additional
    forward arguments given (None values left out, so a version whose method lacks an
    optional argument still runs when it is not used)."""
    accepted = set(inspect.signature(method).parameters)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(method).parameters.values())

    def encode(x: Tensor, *extra: Any) -> Any:
        arguments = {first: x}
        for name, value in zip(names, extra):
            if value is None or (value is False and name == "interpolate_pos_encoding"):
                continue
            if name not in accepted and not takes_any:
                raise TypeError(f"additional_forward_args[{side}]: this transformers version's "
                                f"{getattr(method, '__name__', 'encoder')} takes no {name}")
            arguments[name] = value
        return method(**arguments)

    return encode


def check_argument_count(extra: Tuple[Any, ...], names: Sequence[str], side: int, what: str) -> None:
    if len(extra) > len(names):
        takes = f"({', '.join(names)})" if names else "no additional forward arguments"
        raise TypeError(f"additional_forward_args[{side}]: the {what} side takes {takes}, got {len(extra)} arguments")


def attention_mask_positions(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Optional[Tensor]:
    """The text side's attention mask (its first additional forward argument), if given."""
    mask = extra[0] if extra else None
    return mask.to(torch.bool) if isinstance(mask, Tensor) else None


def last_input_positions(input_ids: Tensor, extra: Tuple[Any, ...]) -> Tensor:
    """Per row, the last position the attention mask marks as input (the last position
    without a mask): where a ``[CLS] ... [SEP]`` caption has its ``[SEP]``."""
    mask = extra[0] if extra and isinstance(extra[0], Tensor) else None
    if mask is None:
        return torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, dtype=torch.long, device=input_ids.device)
    return (mask != 0).long().sum(-1) - 1


def text_side(
    model: Any,
    text_config: Any,
    names: Sequence[str] = ("attention_mask", "position_ids"),
    reference: Optional[Callable[[Tensor, Tuple[Any, ...]], Tensor]] = None,
    check: Optional[Callable[[Tensor, Optional[Tensor]], None]] = None,
    encode: Optional[Callable[..., Any]] = None,
) -> Dict[str, Any]:
    """Side a's DualEncoder arguments for ``model.get_text_features`` (or ``encode``).

    Args:
        names: the additional forward arguments, in the order users pass them
            (``attention_mask`` first).
        reference: ``reference(input_ids, extra) -> ids``; default ``[first, PAD...,
            last, padding...]``: every token between the first and the last input
            position (:func:`last_input_positions`) replaced by the config's
            ``pad_token_id``, for towers that pool at the first token.
        check: ``check(input_ids, baseline_ids_or_None)`` for the family's own rules.
    """
    limits = TokenLimits(vocab_size=getattr(text_config, "vocab_size", None),
                         max_length=getattr(text_config, "max_position_embeddings", None))
    pad_token_id = getattr(text_config, "pad_token_id", None)

    def default_reference(input_ids: Tensor, extra: Tuple[Any, ...]) -> Tensor:
        if pad_token_id is None:
            raise ValueError("baselines[0]: the model's config has no pad_token_id; pass a text baseline explicitly")
        return text_reference(input_ids, pad_token_id, last_input_positions(input_ids, extra))

    make_reference = reference or default_reference

    def check_text(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]) -> None:
        check_argument_count(extra, names, 0, "text")
        input_ids = check_token_ids(inputs, **limits)
        baseline_ids = None
        if baselines is not None:
            baseline_ids = check_token_ids(baselines, name="baselines[0]", **limits)
            check_same_shape(baseline_ids, input_ids)
        if names and names[0] == "attention_mask":
            check_attention_mask(extra[0] if extra else None, input_ids)
        for name, value in zip(names[1:], extra[1:]):
            if value is not None and (not isinstance(value, Tensor) or value.shape[-1] != input_ids.shape[1]):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"additional_forward_args[0] ({name}): expected a Tensor of {input_ids.shape[1]} "
                                 f"positions, got {shape}")
        if check is not None:
            check(input_ids, baseline_ids)

    return dict(
        encode_a=encode or features_function(model.get_text_features, "input_ids", names, 0),
        reference_a=lambda inputs, extra: (make_reference(inputs[0], extra),),
        check_a=check_text,
        position_mask_a=attention_mask_positions if names and names[0] == "attention_mask" else None,
    )


def pixel_side(
    model: Any,
    vision_config: Any,
    image_mean: Sequence[float],
    image_std: Sequence[float],
    fixed_size: bool = True,
    encode: Optional[Callable[..., Any]] = None,
) -> Dict[str, Any]:
    """Side b's DualEncoder arguments for ``model.get_image_features`` (or ``encode``)
    on ``(batch, channels, height, width)`` pixels, its only additional argument
    ``interpolate_pos_encoding`` (for ViT towers); ``fixed_size``: the images must have
    the config's ``image_size`` (ViTs without interpolation; not convolutional towers).
    The default reference is a black image in the model's normalized pixel space."""
    channels = getattr(vision_config, "num_channels", 3)
    size = getattr(vision_config, "image_size", None)
    size = (size, size) if isinstance(size, int) else size
    names = ("interpolate_pos_encoding",) if fixed_size else ()

    def check_image(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]) -> None:
        if len(extra) > len(names) or any(not isinstance(x, bool) and x is not None for x in extra):
            takes = "its only additional argument is interpolate_pos_encoding (a bool)" if names else "it takes none"
            raise ValueError(
                f"additional_forward_args[1]: the image side takes no attention mask; {takes}, got "
                f"{tuple(type(x).__name__ for x in extra)}"
            )
        interpolate = bool(extra and extra[0])
        hint = ("resize them with the model's image processor, or pass additional_forward_args=(..., (True,)) for "
                "interpolate_pos_encoding")
        check_pixels(inputs, channels, image_size=size if fixed_size and not interpolate else None, resize_hint=hint)
        if baselines is not None:
            check_pixels(baselines, channels, name="baselines[1]")

    return dict(
        encode_b=encode or features_function(model.get_image_features, "pixel_values", names, 1),
        reference_b=lambda inputs, extra: (black_image(inputs[0], image_mean, image_std),),
        check_b=check_image,
    )


def pixel_statistics(
    processor: Any, image_mean: Optional[Sequence[float]], image_std: Optional[Sequence[float]],
    default_mean: Sequence[float], default_std: Sequence[float],
) -> Tuple[Sequence[float], Sequence[float]]:
    """``(mean, std)`` such that ``(0 - mean) / std`` is a black pixel as the image
    processor makes it: the explicit arguments, else what the processor does to 0 (its
    rescale offset and ``include_top`` division, as ALIGN's ``EfficientNetImageProcessor``
    has them, and its normalization when it normalizes), else the family's defaults."""
    image_processor = getattr(processor, "image_processor", processor)
    if image_processor is None or image_mean is not None or image_std is not None:
        return (image_mean if image_mean is not None else default_mean,
                image_std if image_std is not None else default_std)
    channels = len(default_mean)

    def per_channel(value: Any) -> Tensor:
        return torch.as_tensor(value, dtype=torch.float64).flatten().expand(channels)

    black = torch.full((channels,), -1.0 if getattr(image_processor, "rescale_offset", False) else 0.0,
                       dtype=torch.float64)
    mean = getattr(image_processor, "image_mean", None)
    std = getattr(image_processor, "image_std", None)
    if getattr(image_processor, "do_normalize", True) is not False:
        if mean is None or std is None:
            return default_mean, default_std
        black = (black - per_channel(mean)) / per_channel(std)
    if getattr(image_processor, "include_top", False) and std is not None:  # EfficientNet: once more by std
        black = black / per_channel(std)
    return tuple((-black).tolist()), (1.0,) * channels
