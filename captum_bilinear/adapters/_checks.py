"""Argument checks the adapters share: token ids, attention masks, images."""

from typing import Any, Optional, Sequence, Tuple, TypedDict

import torch
from torch import Tensor

_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


class TokenLimits(TypedDict):
    """A text tower's limits, as :func:`check_token_ids` takes them (None: unknown)."""

    vocab_size: Optional[int]
    max_length: Optional[int]


def check_token_ids(
    inputs: Tuple[Tensor, ...],
    name: str = "inputs[0]",
    vocab_size: Optional[int] = None,
    max_length: Optional[int] = None,
) -> Tensor:
    """``inputs[0]`` as ``(batch, length)`` integer token ids within ``[0, vocab_size)``
    and at most ``max_length`` long (the model's position embeddings)."""
    if len(inputs) < 1 or not isinstance(inputs[0], Tensor):
        raise TypeError(f"{name}: expected input_ids, a (batch, length) integer Tensor")
    input_ids = inputs[0]
    if input_ids.dtype not in _INTEGER_DTYPES:
        raise TypeError(
            f"{name}: expected input_ids as a (batch, length) integer Tensor, got {input_ids.dtype} "
            f"of shape {tuple(input_ids.shape)}"
        )
    if input_ids.dim() == 1:
        raise ValueError(
            f"{name}: expected input_ids of shape (batch, length), got one sequence of shape "
            f"{tuple(input_ids.shape)}; add the batch dimension (input_ids.unsqueeze(0), or the tokenizer's "
            "return_tensors='pt')"
        )
    if input_ids.dim() != 2:
        raise TypeError(
            f"{name}: expected input_ids as a (batch, length) integer Tensor, got {input_ids.dtype} "
            f"of shape {tuple(input_ids.shape)}"
        )
    if input_ids.shape[1] == 0:
        raise ValueError(
            f"{name}: input_ids of shape {tuple(input_ids.shape)}: an empty caption (no token to encode); a "
            "tokenizer gives at least its special tokens, e.g. [BOS, EOS] for an empty string"
        )
    if max_length is not None and input_ids.shape[1] > max_length:
        raise ValueError(
            f"{name}: {input_ids.shape[1]} tokens, more than the model's maximum of {max_length} positions; "
            "shorten the text or let the tokenizer truncate it (truncation=True)"
        )
    if vocab_size is not None and input_ids.numel():
        outside = (input_ids < 0) | (input_ids >= vocab_size)
        if bool(outside.any()):
            row, position = (int(i) for i in outside.nonzero()[0])
            raise ValueError(
                f"{name}: token id {int(input_ids[row, position])} (row {row}, position {position}) is outside "
                f"the model's vocabulary of {vocab_size} ids; were these ids made by another model's tokenizer?"
            )
    return input_ids


def check_same_shape(baseline_ids: Tensor, input_ids: Tensor, name: str = "baselines[0]") -> None:
    if baseline_ids.shape != input_ids.shape:
        raise ValueError(
            f"{name}: the text baseline must have the input's shape {tuple(input_ids.shape)}, "
            f"got {tuple(baseline_ids.shape)}"
        )


def check_attention_mask(mask: Any, input_ids: Tensor, name: str = "additional_forward_args[0]") -> Optional[Tensor]:
    """An attention mask of ``input_ids``' shape with 0/1 entries, its padding (zeros)
    after the input (right padding), or None."""
    if mask is None:
        return None
    label = f"{name} (attention_mask)"
    if not isinstance(mask, Tensor):
        raise TypeError(f"{label}: expected a Tensor of input_ids' shape, got {type(mask).__name__}")
    if mask.shape != input_ids.shape:
        raise ValueError(
            f"{label}: expected the shape of input_ids {tuple(input_ids.shape)}, got {tuple(mask.shape)}; "
            "pass the attention_mask the tokenizer returned with these input_ids"
        )
    if mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{label}: expected entries 0 (padding) and 1 (input)")
    keep = mask != 0
    empty = ~keep.any(dim=-1)
    if bool(empty.any()):
        raise ValueError(f"{label}: row {int(empty.nonzero()[0])} is all padding (no input to encode)")
    # Right padding: once a row's mask is 0 it stays 0. A 0 before the row's first 1 is
    # left padding; a 0 between two 1s is a hole in the input.
    seen = keep.long().cumsum(-1) > 0
    hole = (~keep & seen & (keep.flip(-1).long().cumsum(-1).flip(-1) > 0)).any(dim=-1)
    if bool(hole.any()):
        row = int(hole.nonzero()[0])
        inside = (~keep[row] & seen[row] & (keep[row].flip(-1).long().cumsum(-1).flip(-1) > 0)).nonzero().flatten()
        raise ValueError(
            f"{label}: row {row} has padding (0) between input tokens, at position(s) {inside.tolist()[:8]}; "
            "a tokenizer's mask is 1 for the whole input and 0 only after it (right padding): pass that mask, "
            "or leave those tokens out of input_ids"
        )
    left_padded = ~keep[:, 0] & keep.any(dim=-1)
    if bool(left_padded.any()):
        raise ValueError(
            f"{label}: row {int(left_padded.nonzero()[0])} has padding before its input (left padding), "
            "which shifts the positions the model was trained with and the token it pools at; pad on the "
            "right (tokenizer.padding_side = 'right')"
        )
    return mask


def check_no_extra(extra: Tuple[Any, ...], name: str, what: str) -> None:
    """Refuses additional forward arguments on a side that takes none."""
    if any(value is not None for value in extra):
        raise ValueError(f"{name}: {what} takes no additional forward arguments; pass None for this side")


def check_pixels(
    inputs: Tuple[Tensor, ...],
    channels: int,
    name: str = "inputs[1]",
    image_size: Optional[Sequence[int]] = None,
    resize_hint: str = "",
) -> Tensor:
    """``inputs[0]`` as normalized ``(batch, channels, height, width)`` float images,
    of ``image_size`` (height, width) when given."""
    if len(inputs) < 1 or not isinstance(inputs[0], Tensor):
        raise TypeError(f"{name}: expected pixel_values, a (batch, channels, height, width) float Tensor")
    pixels = inputs[0]
    if not torch.is_floating_point(pixels):
        raise TypeError(
            f"{name}: pixel_values must be a floating-point Tensor of normalized pixels "
            f"(as the model's image processor returns them), got {pixels.dtype}"
        )
    if pixels.dim() == 3 and pixels.shape[0] == channels:
        raise ValueError(
            f"{name}: expected pixel_values of shape (batch, {channels}, height, width), got one image of shape "
            f"{tuple(pixels.shape)}; add the batch dimension (pixel_values.unsqueeze(0))"
        )
    if pixels.dim() != 4 or pixels.shape[1] != channels:
        raise ValueError(
            f"{name}: expected pixel_values of shape (batch, {channels}, height, width), got {tuple(pixels.shape)}"
        )
    if image_size is not None and tuple(pixels.shape[2:]) != tuple(image_size):
        height, width = image_size
        raise ValueError(
            f"{name}: expected images of {height}x{width} pixels (the model's image size), got "
            f"{pixels.shape[2]}x{pixels.shape[3]}; {resize_hint or 'resize them with the model image processor'}"
        )
    return pixels


def pair_size(size: Any) -> Optional[Tuple[int, int]]:
    """``(height, width)`` from an int or a pair (None stays None)."""
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))
