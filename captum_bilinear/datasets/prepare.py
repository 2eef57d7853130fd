"""An example as one model sees it: tokens, pixels, and the objects in those terms.

Character spans become token spans through the tokenizer's offsets (every token that
overlaps the characters); boxes are mapped through the image processor's resize and
crop (:func:`captum_bilinear.images.fit_image`). An object is dropped when its words fall
outside the tokenized caption (truncation), when its box lies outside what the model sees,
or when its box is not larger than one patch of the model (``min_box_patches``).
"""

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from captum_bilinear.datasets.base import Box, Example, Span


@dataclass(frozen=True)
class PreparedObject:
    """An object in the model's terms.

    Attributes:
        index: its position in ``example.objects`` (the records' ``object``).
        category: the dataset's class.
        phrase: the caption's words for it.
        span: ``(start, stop)`` token positions of ``input_ids`` (BOS included).
        box: ``(x0, y0, x1, y1)`` in the model's pixels.
    """

    index: int
    category: str
    phrase: str
    span: Tuple[int, int]
    box: Box


@dataclass
class PreparedNegative:
    """A hard negative in the model's terms (same image)."""

    index: int
    input_ids: Tensor
    attention_mask: Tensor
    span: Tuple[int, int]  #: the replacement's tokens in the negative caption
    original_span: Tuple[int, int]  #: the replaced words' tokens in the true caption
    box: Box  #: model pixels
    category: str
    swap: Tuple[str, str]


@dataclass
class PreparedExample:
    """An example's model inputs (batch 1) and its objects and negatives in model terms.

    Attributes:
        example: the dataset's example.
        input_ids, attention_mask: ``(1, L)``.
        pixel_values: ``(1, C, H, W)``.
        display: ``(H, W, 3)`` uint8, the image as the model sees it (for figures).
        objects, negatives: what survived the mapping.
        text_players: the caption positions that are players of the masking metrics (the
            tokens that are not special and not padding).
        dropped: objects / negatives dropped here, by reason.
        image_size: ``(height, width)`` of the model's image.
    """

    example: Example
    input_ids: Tensor
    attention_mask: Tensor
    pixel_values: Tensor
    display: np.ndarray
    objects: List[PreparedObject]
    negatives: List[PreparedNegative]
    text_players: Tensor
    image_size: Tuple[int, int]
    dropped: Dict[str, int] = field(default_factory=dict)


def token_span_of_characters(offsets: Sequence[Sequence[int]], span: Span) -> Optional[Tuple[int, int]]:
    """The token positions whose (non-empty) character offsets overlap ``span``, as
    ``(start, stop)``; ``None`` when no token does.

    Example:
        >>> offsets = [(0, 0), (0, 1), (2, 5), (6, 12), (0, 0)]   # [BOS] a red circle [EOS]
        >>> token_span_of_characters(offsets, (2, 12))
        (2, 4)
    """
    start, stop = span
    positions = [i for i, (first, last) in enumerate(offsets) if last > first and first < stop and last > start]
    return (positions[0], positions[-1] + 1) if positions else None


def _tokenize(tokenizer: Any, caption: str, max_length: Optional[int]) -> Tuple[Tensor, Tensor, List[Tuple[int, int]], Tensor]:
    options: Dict[str, Any] = dict(return_tensors="pt", return_offsets_mapping=True, return_special_tokens_mask=True)
    if max_length is not None:
        options.update(truncation=True, max_length=max_length)
    try:
        encoded = tokenizer(caption, **options)
    except (NotImplementedError, TypeError, ValueError) as error:
        raise TypeError("tokenizer: the evaluation needs a fast (Rust-backed) tokenizer that returns offsets; "
                        f"{type(tokenizer).__name__} cannot ({error})") from error
    if "offset_mapping" not in encoded:  # a slow (e.g. sentencepiece) tokenizer ignores return_offsets_mapping
        raise ValueError(f"tokenizer: {type(tokenizer).__name__} returned no offset_mapping; the evaluation needs a "
                         "fast (Rust-backed) tokenizer that returns offsets (load it with use_fast=True, e.g. "
                         "AutoTokenizer.from_pretrained(model, use_fast=True))")
    offsets = [(int(start), int(stop)) for start, stop in encoded["offset_mapping"][0].tolist()]
    mask = encoded["attention_mask"]
    players = ((encoded["special_tokens_mask"][0] == 0) & (mask[0] == 1)).nonzero().flatten()
    return encoded["input_ids"], mask, offsets, players


def _model_box(fitted: Any, box: Box, patch_area: float, dropped: Counter, what: str) -> Optional[Box]:
    """The box in the model's pixels, clipped to the image first (datasets have boxes
    that overhang the image by a fraction of a pixel: COCO's are floats); None (counted
    in ``dropped``) for what lies outside the image or the model's view, or is too small."""
    width, height = fitted.original_size
    x0, y0, x1, y1 = max(0.0, box[0]), max(0.0, box[1]), min(float(width), box[2]), min(float(height), box[3])
    if x0 >= x1 or y0 >= y1:
        dropped[f"{what} box outside the image"] += 1
        return None
    if math.ceil(x1 - 0.5) <= math.ceil(x0 - 0.5) or math.ceil(y1 - 0.5) <= math.ceil(y0 - 0.5):
        dropped[f"{what} box not larger than a patch"] += 1  # not even one pixel's centre
        return None
    try:
        mapped = fitted.map_box((x0, y0, x1, y1))
    except ValueError:
        dropped[f"{what} outside the model's view"] += 1
        return None
    if (mapped[2] - mapped[0]) * (mapped[3] - mapped[1]) <= patch_area:
        dropped[f"{what} box not larger than a patch"] += 1
        return None
    return mapped


def prepare_example(
    example: Example,
    tokenizer: Any,
    image_processor: Any,
    patch_size: int,
    fit: str = "crop",
    min_box_patches: float = 1.0,
    max_length: Optional[int] = None,
) -> PreparedExample:
    """Maps an example into a model's tokens and pixels.

    Args:
        example: from any reader of :mod:`captum_bilinear.datasets`.
        tokenizer: the model's fast tokenizer.
        image_processor: the model's image processor.
        patch_size: the model's patch side in pixels.
        fit: ``"crop"`` (what the processor does) or ``"pad"`` (see ``fit_image``).
        min_box_patches: an object's box (model pixels) must cover more than this many
            patches' area.
        max_length: truncate captions to this many tokens (default: the tokenizer's).

    Returns:
        A :class:`PreparedExample`.

    Example:
        >>> from captum_bilinear.datasets import demo_dataset
        >>> from captum_bilinear.zoo import load_demo_model
        >>> _, tokenizer, processor = load_demo_model()
        >>> prepared = prepare_example(demo_dataset(1)[0], tokenizer, processor, patch_size=8)
        >>> prepared.objects[0].span, prepared.objects[0].box, prepared.pixel_values.shape
        ((4, 6), (13.0, 41.0, 23.0, 51.0), torch.Size([1, 3, 64, 64]))
    """
    from captum_bilinear.images import fit_image

    fitted = fit_image(example.image(), image_processor, fit)
    input_ids, attention_mask, offsets, players = _tokenize(tokenizer, example.caption, max_length)
    patch_area = float(min_box_patches) * patch_size * patch_size
    dropped: Counter = Counter()
    objects = []
    for index, obj in enumerate(example.objects):
        span = token_span_of_characters(offsets, obj.span)
        if span is None:
            dropped["object words truncated"] += 1
            continue
        box = _model_box(fitted, obj.box, patch_area, dropped, "object")
        if box is not None:
            objects.append(PreparedObject(index, obj.category, example.phrase(obj), span, box))
    negatives = []
    for index, negative in enumerate(example.negatives):
        ids, mask, negative_offsets, _ = _tokenize(tokenizer, negative.caption, max_length)
        span = token_span_of_characters(negative_offsets, negative.span)
        original_span = token_span_of_characters(offsets, negative.original_span)
        if span is None or original_span is None:
            dropped["negative words truncated"] += 1
            continue
        box = _model_box(fitted, negative.box, patch_area, dropped, "negative")
        if box is not None:
            negatives.append(PreparedNegative(index, ids, mask, span, original_span, box, negative.category,
                                              negative.swap))
    height, width = fitted.pixel_values.shape[-2:]
    return PreparedExample(example, input_ids, attention_mask, fitted.pixel_values, fitted.display, objects,
                           negatives, players, (int(height), int(width)), dict(dropped))


def move_to(prepared: PreparedExample, device: Any) -> PreparedExample:
    """The tensors of ``prepared`` on ``device``."""
    prepared.input_ids = prepared.input_ids.to(device)
    prepared.attention_mask = prepared.attention_mask.to(device)
    prepared.pixel_values = prepared.pixel_values.to(device)
    for negative in prepared.negatives:
        negative.input_ids = negative.input_ids.to(device)
        negative.attention_mask = negative.attention_mask.to(device)
    return prepared


def special_positions(input_ids: Tensor, players: Tensor) -> Tensor:
    """bool ``(L,)``: the positions that are not players (special tokens, padding)."""
    mask = torch.ones(input_ids.shape[-1], dtype=torch.bool)
    mask[players.cpu()] = False
    return mask
