"""Selections on interaction results: caption spans (by token indices or by substring),
image regions (by pixel box or patch mask), projections to the other side, patch grids
and intra-modal maps. They only read ``A``; they never change it.

Conventions (used by :mod:`captum_bilinear.metrics` and
:mod:`captum_bilinear.visualization` too):

* ``interactions`` is ``A`` of shape ``(positions_a, positions_b)`` for one example or
  ``(batch, positions_a, positions_b)``; side a is the caption, side b the image. With
  ``has_cls=True`` image position 0 is the CLS token and positions ``1..`` are the
  patches in row-major grid order.
* ``image_size`` is ``(height, width)`` in pixels, as ``pixel_values.shape[-2:]``,
  of the image the patch grid covers (after the processor's resize and crop; map your
  annotation boxes into that frame first).
* A box is ``(x0, y0, x1, y1)`` in pixels, end exclusive. Pixel ``(row y, column x)``
  is in the box when its centre ``(x + 0.5, y + 0.5)`` is, so an integer box holds the
  pixels ``x0 <= x < x1``, ``y0 <= y < y1``.
* A patch grid ``(grid_h, grid_w)`` partitions the pixels: pixel column ``x`` belongs to
  patch column ``x * grid_w // width`` (rows likewise). For a ViT the grid divides the
  image and every patch covers its ``patch_size x patch_size`` pixels.
"""

import math
import numbers
import os
import re
import warnings
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_bilinear._utils.checks import as_tensor, check_box, check_choice, check_pair, check_span

UPSAMPLE_MODES = ("nearest", "bilinear")

#: The labels :func:`token_labels` gives special tokens, by the tokenizer attribute they stand for.
SPECIAL_LABELS = (("pad_token", "[PAD]"), ("cls_token", "[CLS]"), ("sep_token", "[SEP]"),
                  ("bos_token", "[BOS]"), ("eos_token", "[EOS]"))
#: The special tokens' labels.
SPECIAL_TOKENS = tuple(label for _, label in SPECIAL_LABELS)


def _interactions(interactions: Any, name: str = "interactions") -> Tensor:
    tensor = as_tensor(interactions, name)
    if tensor.dim() not in (2, 3):
        raise ValueError(
            f"{name}: expected shape (positions_a, positions_b) or (batch, positions_a, positions_b), "
            f"got {tuple(tensor.shape)}"
        )
    return tensor


def _grid(grid_size: Optional[Any], n_patches: int, name: str = "grid_size") -> Tuple[int, int]:
    if grid_size is None:
        side = math.isqrt(n_patches)
        if side * side != n_patches or n_patches == 0:
            raise ValueError(
                f"{name}: {n_patches} patch positions do not form a square grid; pass grid_size=(grid_h, grid_w)"
            )
        return side, side
    grid = check_pair(grid_size, name)
    if grid[0] * grid[1] != n_patches:
        raise ValueError(f"{name}: {grid} has {grid[0] * grid[1]} patches but the image side has {n_patches}")
    return grid


def patch_positions(
    n_positions_b: int, grid_size: Optional[Any] = None, has_cls: bool = True
) -> Tuple[int, Tuple[int, int]]:
    """The first patch position and the grid of an image side with ``n_positions_b``
    positions (``grid_size=None``: a square grid).

    Example:
        >>> patch_positions(50)
        (1, (7, 7))
    """
    if not isinstance(has_cls, bool):
        raise TypeError(f"has_cls: expected a bool, got {has_cls!r}")
    offset = 1 if has_cls else 0
    return offset, _grid(grid_size, n_positions_b - offset)


def span_image_map(
    interactions: Tensor,
    span: Tuple[int, int],
    grid_size: Optional[Tuple[int, int]] = None,
    has_cls: bool = True,
) -> Tensor:
    """The image map of a caption span: ``A[span, patches]`` summed over the span's
    tokens and reshaped to the patch grid (the CLS position is dropped).

    Args:
        interactions: ``(positions_a, positions_b)`` or ``(batch, positions_a, positions_b)``.
        span: token positions ``(start, stop)``, stop exclusive, e.g. the object's words.
        grid_size: ``(grid_h, grid_w)``; ``None`` for a square grid.
        has_cls: whether image position 0 is a CLS token to drop.

    Returns:
        ``(grid_h, grid_w)`` (or ``(batch, grid_h, grid_w)``), rows top to bottom.

    Example:
        >>> A = torch.zeros(4, 5)        # 4 tokens x (CLS + 2x2 patches)
        >>> A[1, 4] = 2.0; A[2, 4] = 1.0  # tokens 1, 2 -> bottom-right patch
        >>> span_image_map(A, (1, 3))
        tensor([[0., 0.],
                [0., 3.]])
    """
    tensor = _interactions(interactions)
    start, stop = check_span(span, tensor.shape[-2])
    offset, (grid_h, grid_w) = patch_positions(tensor.shape[-1], grid_size, has_cls)
    summed = tensor[..., start:stop, offset:].sum(-2)
    return summed.reshape(*summed.shape[:-1], grid_h, grid_w)


def box_pixel_mask(box: Any, image_size: Tuple[int, int]) -> Tensor:
    """The pixels of ``box`` (their centres inside it) as a bool ``(height, width)`` mask.

    Args:
        box: ``(x0, y0, x1, y1)`` in pixels, end exclusive.
        image_size: ``(height, width)``.

    Returns:
        bool ``(height, width)``.

    Example:
        >>> box_pixel_mask((1, 0, 3, 1), (2, 4)).int()
        tensor([[0, 1, 1, 0],
                [0, 0, 0, 0]], dtype=torch.int32)
    """
    height, width = check_pair(image_size, "image_size")
    x0, y0, x1, y1 = check_box(box, (height, width))
    columns = torch.arange(width, dtype=torch.float64) + 0.5
    rows = torch.arange(height, dtype=torch.float64) + 0.5
    in_x = (columns >= x0) & (columns < x1)
    in_y = (rows >= y0) & (rows < y1)
    return in_y[:, None] & in_x[None, :]


def _pixel_to_patch(image_size: Tuple[int, int], grid: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    (height, width), (grid_h, grid_w) = image_size, grid
    if grid_h > height or grid_w > width:
        raise ValueError(f"grid_size: {grid} is finer than the image of (height, width) = {image_size}")
    return torch.arange(height) * grid_h // height, torch.arange(width) * grid_w // width


def box_patch_weights(box: Any, image_size: Tuple[int, int], grid_size: Tuple[int, int]) -> Tensor:
    """The share of each patch's pixels that lie in ``box``: float64 ``(grid_h, grid_w)``
    in ``[0, 1]`` (1 for patches inside the box, 0 outside, a fraction on its border).

    Summing a patch map weighted this way equals summing its nearest-upsampled pixel
    map over the box, divided by the pixels per patch.

    Example:
        >>> box_patch_weights((0, 0, 3, 2), image_size=(4, 4), grid_size=(2, 2))
        tensor([[1.0000, 0.5000],
                [0.0000, 0.0000]], dtype=torch.float64)
    """
    size = check_pair(image_size, "image_size")
    grid = check_pair(grid_size, "grid_size")
    mask = box_pixel_mask(box, size).to(torch.float64)
    row_patch, column_patch = _pixel_to_patch(size, grid)
    index = (row_patch[:, None] * grid[1] + column_patch[None, :]).flatten()
    inside = torch.zeros(grid[0] * grid[1], dtype=torch.float64).index_add_(0, index, mask.flatten())
    pixels = torch.bincount(index, minlength=grid[0] * grid[1]).to(torch.float64)
    return (inside / pixels).reshape(grid)


def upsample_map(image_map: Tensor, image_size: Tuple[int, int], mode: str = "nearest") -> Tensor:
    """A patch-grid map at pixel resolution.

    Args:
        image_map: ``(grid_h, grid_w)``.
        image_size: ``(height, width)``.
        mode: ``"nearest"``: every pixel takes its patch's value (the patch covers its
            pixels; the grid partition of the module docstring). ``"bilinear"``:
            ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``,
            i.e. patch values sit at patch centres and are interpolated in between.

    Returns:
        ``(height, width)``, the dtype of ``image_map`` (float64 for non-float input).

    Example:
        >>> upsample_map(torch.tensor([[1., 2.]]), (2, 4))
        tensor([[1., 1., 2., 2.],
                [1., 1., 2., 2.]])
    """
    tensor = as_tensor(image_map, "image_map")
    if tensor.dim() != 2:
        raise ValueError(f"image_map: expected shape (grid_h, grid_w), got {tuple(tensor.shape)}")
    size = check_pair(image_size, "image_size")
    check_choice(mode, "mode", UPSAMPLE_MODES)
    if mode == "nearest":
        row_patch, column_patch = _pixel_to_patch(size, (tensor.shape[0], tensor.shape[1]))
        return tensor[row_patch.to(tensor.device)][:, column_patch.to(tensor.device)]
    return F.interpolate(tensor[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def box_token_map(
    interactions: Tensor,
    box: Any,
    image_size: Tuple[int, int],
    grid_size: Optional[Tuple[int, int]] = None,
    has_cls: bool = True,
) -> Tensor:
    """The caption map of an image box: ``Σ_p w_p A[:, p]`` over the patches ``p``, with
    ``w_p`` the share of patch ``p`` inside the box (:func:`box_patch_weights`; CLS is
    not part of any box).

    Args:
        interactions: ``(positions_a, positions_b)`` or ``(batch, positions_a, positions_b)``.
        box: ``(x0, y0, x1, y1)`` in pixels, end exclusive.
        image_size: ``(height, width)`` of the image the grid covers.
        grid_size: ``(grid_h, grid_w)``; ``None`` for a square grid.
        has_cls: whether image position 0 is a CLS token.

    Returns:
        ``(positions_a,)`` (or ``(batch, positions_a)``), one value per token.

    Example:
        >>> A = torch.zeros(3, 5)
        >>> A[1, 1] = 4.0                  # token 1 -> top-left patch
        >>> box_token_map(A, (0, 0, 8, 8), image_size=(16, 16))
        tensor([0., 4., 0.])
    """
    tensor = _interactions(interactions)
    offset, grid = patch_positions(tensor.shape[-1], grid_size, has_cls)
    weights = box_patch_weights(box, image_size, grid).to(device=tensor.device, dtype=tensor.dtype).flatten()
    return tensor[..., offset:] @ weights


def span_box_attribution(
    interactions: Tensor,
    span: Tuple[int, int],
    box: Any,
    image_size: Tuple[int, int],
    grid_size: Optional[Tuple[int, int]] = None,
    has_cls: bool = True,
) -> Tensor:
    """The interaction between a caption span and an image box:
    ``Σ_{s in span} Σ_p w_p A[s, p]`` with the box weights of :func:`box_patch_weights`.

    Returns:
        A 0-d tensor (or ``(batch,)``).

    Example:
        >>> A = torch.zeros(3, 5)
        >>> A[1, 1], A[1, 2] = 4.0, -1.0   # token 1: +4 top-left, -1 top-right patch
        >>> span_box_attribution(A, (1, 2), (0, 0, 12, 8), image_size=(16, 16))
        tensor(3.5000)
    """
    tensor = _interactions(interactions)
    start, stop = check_span(span, tensor.shape[-2])
    return box_token_map(tensor, box, image_size, grid_size, has_cls)[..., start:stop].sum(-1)


def patch_grid(
    values: Tensor, grid_size: Optional[Tuple[int, int]] = None, has_cls: bool = True
) -> Tensor:
    """Image-side values ``(..., positions_b)`` as a patch grid ``(..., grid_h, grid_w)``,
    the CLS position set aside.

    Example:
        >>> patch_grid(torch.arange(5.))  # CLS + 2x2 patches
        tensor([[1., 2.],
                [3., 4.]])
    """
    tensor = as_tensor(values, "values")
    offset, (grid_h, grid_w) = patch_positions(tensor.shape[-1], grid_size, has_cls)
    return tensor[..., offset:].reshape(*tensor.shape[:-1], grid_h, grid_w)


def span_token_map(interactions: Tensor, span: Tuple[int, int]) -> Tensor:
    """The side-b map of a side-a span for two token sequences (text-text): ``A[span]``
    summed over the span, ``(positions_b,)`` (or ``(batch, positions_b)``).

    Example:
        >>> span_token_map(torch.tensor([[1., 2.], [3., 4.], [5., 6.]]), (1, 3))
        tensor([ 8., 10.])
    """
    tensor = _interactions(interactions)
    start, stop = check_span(span, tensor.shape[-2])
    return tensor[..., start:stop, :].sum(-2)


def region_token_map(interactions: Tensor, patch_mask: Any, has_cls: bool = True) -> Tensor:
    """The side-a map of an image region given as a patch mask ``(grid_h, grid_w)`` (bool,
    or weights in ``[0, 1]``): ``sum_p mask[p] A[:, p]``.

    Example:
        >>> A = torch.zeros(2, 5); A[1, 4] = 3.0
        >>> region_token_map(A, torch.tensor([[False, False], [False, True]]))
        tensor([0., 3.])
    """
    tensor = _interactions(interactions)
    mask = as_tensor(patch_mask, "patch_mask").to(tensor.dtype)
    if mask.dim() != 2:
        raise ValueError(f"patch_mask: expected shape (grid_h, grid_w), got {tuple(mask.shape)}")
    offset, grid = patch_positions(tensor.shape[-1], tuple(mask.shape), has_cls)
    return tensor[..., offset:] @ mask.flatten().to(tensor.device)


def box_image_map(
    interactions: Tensor,
    box: Any,
    image_size: Tuple[int, int],
    grid_size_a: Optional[Tuple[int, int]] = None,
    grid_size_b: Optional[Tuple[int, int]] = None,
    has_cls: bool = True,
) -> Tensor:
    """Image-image interactions: the map on image b of a box on image a,
    ``(grid_h_b, grid_w_b)`` (or batched), CLS positions set aside on both sides.

    Args:
        interactions: ``(positions_a, positions_b)`` or batched, both sides images.
        box: ``(x0, y0, x1, y1)`` on image a, pixels, end exclusive.
        image_size: ``(height, width)`` of image a.
        grid_size_a, grid_size_b: the patch grids (``None``: square).
        has_cls: whether position 0 of each side is a CLS token.

    Example:
        >>> A = torch.zeros(5, 5); A[1, 4] = 2.0   # a's top-left patch <-> b's bottom-right
        >>> box_image_map(A, (0, 0, 8, 8), (16, 16))
        tensor([[0., 0.],
                [0., 2.]])
    """
    tensor = _interactions(interactions)
    on_b = box_token_map(tensor.transpose(-1, -2), box, image_size, grid_size_a, has_cls)
    return patch_grid(on_b, grid_size_b, has_cls)


# ------------------------------------------------------------- groups as players


def span_mask(positions_a: int, spans: Sequence[Tuple[int, int]], rest: bool = True) -> Tensor:
    """A side-a ``feature_mask`` with each span as a group: the tokens of ``spans[k]`` get id
    ``k``, the other positions id ``len(spans)`` (``rest=True``: every position in a group,
    so the convergence delta stays defined and ``A`` summed over the groups is ``A``
    summed) or ``-1`` (left out).

    Example:
        >>> span_mask(7, [(1, 3), (4, 6)])
        tensor([2, 0, 0, 2, 1, 1, 2])
        >>> span_mask(7, [(1, 3)], rest=False)
        tensor([-1,  0,  0, -1, -1, -1, -1])
    """
    if isinstance(positions_a, bool) or not isinstance(positions_a, int) or positions_a < 1:
        raise ValueError(f"positions_a: expected a positive int, got {positions_a!r}")
    mask = torch.full((positions_a,), len(spans) if rest else -1, dtype=torch.long)
    for index, span in enumerate(spans):
        start, stop = check_span(span, positions_a)
        if bool((mask[start:stop] != mask.new_tensor(len(spans) if rest else -1)).any()):
            raise ValueError(f"spans: span {index} {(start, stop)} overlaps an earlier one; group ids give each "
                             "position one group")
        mask[start:stop] = index
    return mask


def box_weights(
    boxes: Any, image_size: Tuple[int, int], grid_size: Optional[Tuple[int, int]] = None, has_cls: bool = True,
) -> Tensor:
    """A side-b ``feature_mask`` of group weights, one group per box: each patch weighted by
    its share inside the box (:func:`box_patch_weights`; CLS 0), so that the grouped ``A``
    is :func:`box_token_map` of the full one. float64 ``(len(boxes), positions_b)``.

    Args:
        boxes: one box ``(x0, y0, x1, y1)`` or a sequence of them, in pixels.
        image_size, grid_size, has_cls: the image side's layout (``grid_size`` None: the
            grid of a square image of ``image_size``... must be given for non-square grids).

    Example:
        >>> box_weights((0, 0, 8, 8), image_size=(16, 16), grid_size=(2, 2))
        tensor([[0., 1., 0., 0., 0.]], dtype=torch.float64)
    """
    if grid_size is None:
        raise ValueError("grid_size: expected (grid_h, grid_w), the image side's patch grid")
    if isinstance(boxes, (str, bytes)) or not hasattr(boxes, "__len__") or not hasattr(boxes, "__iter__"):
        raise TypeError(f"boxes: expected a box (x0, y0, x1, y1) or a sequence of them, got {boxes!r}")
    if len(boxes) == 0:
        raise ValueError("boxes: expected a box (x0, y0, x1, y1) or a sequence of them, got none")
    many = not (len(boxes) == 4 and all(
        (isinstance(v, numbers.Real) and not isinstance(v, bool)) or (hasattr(v, "ndim") and v.ndim == 0)
        for v in boxes))
    listed = list(boxes) if many else [boxes]
    offset = 1 if has_cls else 0
    rows = [torch.cat([torch.zeros(offset, dtype=torch.float64),
                       box_patch_weights(box, image_size, grid_size).flatten()]) for box in listed]
    return torch.stack(rows)


def _offsets(tokenizer: Any, caption: str) -> List[Tuple[int, int]]:
    try:
        encoding = tokenizer(caption, return_offsets_mapping=True)
    except (NotImplementedError, TypeError, ValueError) as error:
        raise TypeError(
            "tokenizer: token_span needs a fast (Rust-backed) tokenizer that returns offsets; "
            f"{type(tokenizer).__name__} cannot ({error})"
        ) from error
    return [tuple(pair) for pair in encoding["offset_mapping"]]


def _lower_in_place(text: str) -> str:
    """``text`` lower-cased one character per character, so that indices into it are
    indices into ``text`` (``"İ".lower()`` is two characters; such a letter stays as it is)."""
    return "".join(lower if len(lower := character.lower()) == 1 else character for character in text)


def token_span(tokenizer: Any, caption: str, substring: str, occurrence: int = 1) -> Tuple[int, int]:
    """The token positions ``(start, stop)`` of ``substring`` in ``tokenizer(caption)``'s
    ``input_ids`` (BOS included, so they index ``A``'s side-a axis directly).

    Matching is on characters (exact, else case-insensitive), through the tokenizer's
    offsets; every token that overlaps the substring belongs to the span.

    Args:
        tokenizer: a fast HF tokenizer (e.g. ``CLIPTokenizerFast``).
        caption: the caption exactly as tokenized.
        substring: e.g. ``"red circle"``.
        occurrence: which occurrence (1 = first).

    Returns:
        ``(start, stop)``, stop exclusive.

    Example:
        >>> from captum_bilinear.zoo import load_demo_model
        >>> _, tokenizer, _ = load_demo_model()
        >>> token_span(tokenizer, "a red circle above a blue square", "blue square")  # [BOS] is position 0
        (6, 8)
    """
    if not isinstance(substring, str) or not substring.strip():
        raise ValueError(f"substring: expected a non-empty string, got {substring!r}")
    if not isinstance(occurrence, int) or occurrence < 1:
        raise ValueError(f"occurrence: expected a positive int, got {occurrence!r}")
    start = -1
    for haystack, needle in ((caption, substring), (_lower_in_place(caption), _lower_in_place(substring))):
        start = -1
        for _ in range(occurrence):
            start = haystack.find(needle, start + 1)
            if start < 0:
                break
        if start >= 0:
            break
    if start < 0:
        raise ValueError(f"substring: {substring!r} is not in the caption {caption!r}"
                         + (f" {occurrence} times" if occurrence > 1 else ""))
    stop = start + len(substring)
    positions = [i for i, (first, last) in enumerate(_offsets(tokenizer, caption)) if last > first and first < stop and last > start]
    if not positions:
        raise ValueError(f"substring: {substring!r} covers no token of the caption {caption!r}")
    return positions[0], positions[-1] + 1


def token_labels(tokenizer: Any, input_ids: Union[Sequence[int], Tensor]) -> List[str]:
    """Readable labels for a caption's tokens, e.g. for plots: word-piece markers removed,
    special tokens shortened to ``[BOS]``, ``[EOS]``, ``[PAD]``, ``[CLS]``, ``[SEP]``.

    Example:
        >>> from captum_bilinear.zoo import load_demo_model
        >>> _, tokenizer, _ = load_demo_model()
        >>> token_labels(tokenizer, tokenizer("a red circle")["input_ids"])
        ['[BOS]', 'a', 'red', 'circle', '[EOS]']
    """
    ids = [int(i) for i in (input_ids.tolist() if isinstance(input_ids, Tensor) else input_ids)]
    short = {}
    for attribute, label in SPECIAL_LABELS:
        token = getattr(tokenizer, attribute, None)
        if token is not None:
            short[token] = label
    markers = ("</w>", "\u0120", "\u2581", "##")  # CLIP, GPT-2, SentencePiece, WordPiece
    labels = []
    for token in tokenizer.convert_ids_to_tokens(ids):
        if token in short:
            labels.append(short[token])
            continue
        label = token
        for marker in markers:
            label = label.replace(marker, "")
        labels.append(label or token)
    return labels


# ------------------------------------------------------------------ captions


#: Words that do not belong to a noun phrase (caption spans default to the maximal runs
#: of other words).
STOP_WORDS = frozenset(
    "a an the and or of to in on at with without from by for is are there this that it its "
    "left right above below under over next near beside behind between top bottom side "
    "image picture photo photograph scene shows showing containing".split()
)



def _is_demo_tokenizer(tokenizer: Any) -> bool:
    from captum_bilinear.zoo import DEMO_MODEL_DIR

    path = getattr(tokenizer, "name_or_path", "") or ""
    return bool(path) and os.path.realpath(path) == os.path.realpath(DEMO_MODEL_DIR)


def unknown_words(caption: str, vocabulary: Sequence[str]) -> List[str]:
    """The words of ``caption`` (lower-cased, in order, once each) that are not in ``vocabulary``.

    Example:
        >>> unknown_words("A dog on a sofa, a dog", ["a", "on", ","])
        ['dog', 'sofa']
    """
    known = {word.lower() for word in vocabulary}
    words = re.findall(r"[a-z]+|[0-9]+|[^\sa-z0-9]", caption.lower())
    return [word for word in dict.fromkeys(words) if word not in known]


def _tokenizer_limit(tokenizer: Any) -> Optional[int]:
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 100_000 else None


def encode_caption(
    tokenizer: Any, caption: str, max_length: Optional[int] = None, vocabulary: Optional[Sequence[str]] = None
) -> Any:
    """Tokenizes a caption as the model reads it, warning about what it cannot read.

    Warns (``UserWarning``, naming ``caption``) when the caption is longer than the model
    reads (it is cut, as the tokenizer's truncation does) and when a model that knows only
    a fixed vocabulary -- the bundled demo model, or any ``vocabulary`` given -- meets
    words outside it: its tokenizer splits them into pieces the model never saw as words.

    Args:
        tokenizer: a HF tokenizer.
        caption: the caption.
        max_length: the most tokens the model reads (default: the tokenizer's
            ``model_max_length``).
        vocabulary: the words the model knows (default: the demo vocabulary for the
            bundled demo tokenizer, else no check).

    Returns:
        The tokenizer's ``BatchEncoding`` (``input_ids``, ``attention_mask``; batch of 1,
        PyTorch tensors).

    Example:
        >>> import warnings
        >>> from captum_bilinear.zoo import load_demo_model
        >>> _, tokenizer, _ = load_demo_model()
        >>> encode_caption(tokenizer, "a red circle")["input_ids"].shape
        torch.Size([1, 5])
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     _ = encode_caption(tokenizer, "a dog")
        >>> "'dog' (d o g)" in str(caught[0].message)
        True
    """
    if not isinstance(caption, str):
        raise TypeError(f"caption: expected a str, got {type(caption).__name__}")
    if not caption.strip():
        raise ValueError("caption: the caption is empty")
    if vocabulary is None and _is_demo_tokenizer(tokenizer):
        from captum_bilinear.zoo import VOCABULARY

        vocabulary = VOCABULARY
    if vocabulary is not None:
        unknown = unknown_words(caption, vocabulary)
        if unknown:
            pieces = ", ".join(
                f"'{word}' ({' '.join(piece.replace('</w>', '') for piece in tokenizer.tokenize(word))})"
                for word in unknown)
            warnings.warn(
                f"caption: the model knows only the words of its training scenes; its tokenizer splits {pieces} "
                f"into pieces it never saw as words, so their attributions mean little. "
                f"The words it knows: {' '.join(vocabulary)}", UserWarning, stacklevel=2)
    limits = [limit for limit in (max_length, _tokenizer_limit(tokenizer)) if limit]
    limit = min(limits) if limits else None
    length = len(tokenizer(caption, truncation=False, verbose=False)["input_ids"])
    if limit is not None and length > limit:
        kept = tokenizer(caption, truncation=True, max_length=limit, return_offsets_mapping=True)
        ends = [end for start, end in kept.get("offset_mapping", []) if end > start]
        where = f" after {caption[:max(ends)][-40:]!r}" if ends else ""
        warnings.warn(f"caption: {length} tokens (start and end included), but the model reads at most {limit}: "
                      f"it is cut{where}", UserWarning, stacklevel=2)
    return tokenizer(caption, truncation=limit is not None, max_length=limit, return_tensors="pt")


def noun_phrase_spans(tokens: Sequence[str], words: Optional[Sequence[Tuple[int, int]]] = None) -> List[Tuple[int, int]]:
    """Maximal runs of content words (no special tokens, no :data:`STOP_WORDS`), e.g.
    ``[BOS] a small red circle left of a blue square [EOS]`` -> "small red circle", "blue square".

    Args:
        tokens: token labels (:func:`~captum_bilinear.selection.token_labels`).
        words: the token positions ``(start, stop)`` of each word, in order, where words
            are split into several tokens (:func:`caption_words`); default: one word per token.

    Returns:
        Token spans ``(start, stop)``, stop exclusive.

    Example:
        >>> noun_phrase_spans(["[BOS]", "a", "red", "circle", "left", "of", "a", "blue", "square", "[EOS]"])
        [(2, 4), (7, 9)]
        >>> noun_phrase_spans(["[BOS]", "a", "d", "o", "g", "[EOS]"], words=[(1, 2), (2, 5)])  # "a dog"
        [(2, 5)]
    """
    words = [(index, index + 1) for index in range(len(tokens))] if words is None else list(words)
    spans: List[Tuple[int, int]] = []
    start: Optional[int] = None
    end = 0  # the previous word's stop, read once a span has started
    for word_start, word_stop in words + [(len(tokens), len(tokens))]:
        text = "".join(tokens[word_start:word_stop])
        special = any(token.startswith("[") and token.endswith("]") for token in tokens[word_start:word_stop])
        content = bool(text) and not special and text.lower() not in STOP_WORDS and text.isalnum()
        if content and start is None:
            start = word_start
        elif not content and start is not None:
            spans.append((start, end))
            start = None
        end = word_stop
    return spans


def caption_words(tokenizer: Any, caption: str, max_length: Optional[int] = None) -> Optional[List[Tuple[int, int]]]:
    """The token positions ``(start, stop)`` of each word of ``caption``: letters and
    digits with no space between them form one word, whatever the tokenizer made of them
    (from a fast tokenizer's offsets; None where the tokenizer gives none).

    Args:
        tokenizer: a HF tokenizer.
        caption: the caption.
        max_length: the most tokens the model reads (as in :func:`encode_caption`).

    Example:
        >>> from captum_bilinear.zoo import load_demo_model
        >>> _, tokenizer, _ = load_demo_model()
        >>> caption_words(tokenizer, "a dog, a star")  # [BOS] a d o g , a star [EOS]
        [(0, 1), (1, 2), (2, 5), (5, 6), (6, 7), (7, 8), (8, 9)]
    """
    try:
        encoding = tokenizer(caption, return_offsets_mapping=True, truncation=max_length is not None,
                             max_length=max_length)
        offsets = encoding["offset_mapping"]
    except (NotImplementedError, TypeError, ValueError, KeyError):
        return None
    words: List[Tuple[int, int]] = []
    previous_end = None
    for index, (start, end) in enumerate(offsets):
        piece = caption[start:end]
        if piece.isalnum() and previous_end == start and words:
            words[-1] = (words[-1][0], index + 1)
        else:
            words.append((index, index + 1))
        previous_end = end if piece.isalnum() else None
    return words



def span_label(tokenizer: Any, caption: str, span: Tuple[int, int], tokens: Sequence[str]) -> str:
    """The caption's own text of a token span (``"dog"``, not the pieces ``"d o g"``), from
    a fast tokenizer's offsets; the tokens' labels joined by spaces otherwise.

    Example:
        >>> from captum_bilinear.zoo import load_demo_model
        >>> _, tokenizer, _ = load_demo_model()
        >>> span_label(tokenizer, "a dog", (2, 5), ["[BOS]", "a", "d", "o", "g", "[EOS]"])
        'dog'
    """
    try:
        offsets = tokenizer(caption, return_offsets_mapping=True)["offset_mapping"]
        start, stop = offsets[span[0]][0], offsets[span[1] - 1][1]
    except (NotImplementedError, TypeError, ValueError, KeyError, IndexError):
        return " ".join(tokens[span[0]:span[1]])
    return caption[start:stop] if stop > start else " ".join(tokens[span[0]:span[1]])


def naflex_cells(interactions: Any, spatial_shape: Any) -> Tuple[Tensor, Tuple[int, int]]:
    """One SigLIP-2 (NaFlex) image's interactions over its own patch grid.

    SigLIP-2's processor resizes each image to its own ``(h, w)`` grid of patches
    (``spatial_shapes``) and pads the ``h * w`` patches to ``max_num_patches`` slots; slot
    ``j < h * w`` is the cell ``(j // w, j % w)``, the rest are padding. The returned
    interactions keep the cells in row-major order (no CLS), so the span / box helpers and
    :func:`~captum_bilinear.visualization.plot_interaction_figure` take them with
    ``grid_size=grid, has_cls=False`` (boxes in the pixels of the resized image, ``(h *
    patch_size, w * patch_size)``, as :func:`naflex_image` shows it).

    Args:
        interactions: ``(positions_a, slots)`` of one example (or ``(batch, positions_a,
            slots)`` of images sharing this shape).
        spatial_shape: the image's ``spatial_shapes`` row, ``(h, w)``.

    Returns:
        ``(interactions over the h * w cells, (h, w))``.

    Example:
        >>> A = torch.arange(8.).view(1, 8)          # one token x 8 slots
        >>> cells, grid = naflex_cells(A, torch.tensor([2, 3]))
        >>> grid, span_image_map(cells, (0, 1), grid, has_cls=False)
        ((2, 3), tensor([[0., 1., 2.],
                [3., 4., 5.]]))
    """
    tensor = _interactions(interactions)
    shape = as_tensor(spatial_shape, "spatial_shape").flatten().tolist()
    if len(shape) != 2:
        raise ValueError(f"spatial_shape: expected one image's (h, w), got {tuple(shape)}")
    grid = check_pair(tuple(int(x) for x in shape), "spatial_shape")
    if grid[0] * grid[1] > tensor.shape[-1]:
        raise ValueError(f"spatial_shape: a {grid} grid has {grid[0] * grid[1]} cells but the image side has "
                         f"{tensor.shape[-1]} slots")
    return tensor[..., : grid[0] * grid[1]], grid


def naflex_image(
    pixel_values: Any,
    spatial_shape: Any,
    patch_size: int,
    image_mean: Sequence[float] = (0.5, 0.5, 0.5),
    image_std: Sequence[float] = (0.5, 0.5, 0.5),
) -> Tensor:
    """One SigLIP-2 image as the model saw it, put back together from its patches:
    ``(h * patch_size, w * patch_size, channels)`` in ``[0, 1]``, for figures.

    Args:
        pixel_values: ``(slots, patch_size * patch_size * channels)``, one row of the
            processor's ``pixel_values`` (each patch's pixels row-major, channel last).
        spatial_shape: the image's ``(h, w)``.
        patch_size: the model's ``config.vision_config.patch_size``.
        image_mean, image_std: the processor's normalization (SigLIP-2: 0.5, 0.5).

    Example:
        >>> patches = torch.zeros(4, 2 * 2 * 3)      # 4 slots of 2x2 RGB patches
        >>> naflex_image(patches, (1, 3), 2).shape    # a 1x3 grid: 2x6 pixels
        torch.Size([2, 6, 3])
    """
    values = as_tensor(pixel_values, "pixel_values")
    (h, w), size = check_pair(tuple(int(x) for x in as_tensor(spatial_shape, "spatial_shape").flatten().tolist()),
                              "spatial_shape"), int(patch_size)
    channels = len(image_mean)
    if values.dim() != 2 or values.shape[-1] != size * size * channels or values.shape[0] < h * w:
        raise ValueError(f"pixel_values: expected one image's (slots >= {h * w}, {size * size * channels}) patches, "
                         f"got {tuple(values.shape)}")
    patches = values[: h * w].reshape(h, w, size, size, channels).permute(0, 2, 1, 3, 4).reshape(h * size, w * size,
                                                                                                  channels)
    mean = torch.as_tensor(image_mean, dtype=patches.dtype)
    std = torch.as_tensor(image_std, dtype=patches.dtype)
    return (patches * std + mean).clamp(0, 1)


def feature_map_grid(model: Any, layer: Any, inputs: Any, additional_forward_args: Any = None) -> Tuple[int, int]:
    """``(H, W)`` of a convolutional layer's ``(batch, C, H, W)`` output (an EfficientNet
    block of ALIGN, ``model.visual.layer4`` of a ResNet CLIP), whose ``H * W`` cells are
    the image positions of ``A`` in row-major order: pass it as ``grid_size`` (with
    ``has_cls=False``) to the span / box helpers and figures. One pass of side b's encoder.

    Args:
        model: the model (or :class:`~captum_bilinear.DualEncoder`).
        layer: the module of side b's encoder.
        inputs: side b's inputs, e.g. ``pixel_values``.
        additional_forward_args: side b's additional forward arguments, if any.

    Example:
        >>> from captum_bilinear import DualEncoder
        >>> conv = torch.nn.Conv2d(3, 4, 3, stride=2)
        >>> image = lambda x: conv(x).mean((2, 3))
        >>> feature_map_grid(DualEncoder(image, image), conv, torch.zeros(1, 3, 9, 13))
        (4, 6)
    """
    from captum_bilinear._utils.callables import as_tuple
    from captum_bilinear._utils.layer_hooks import _first_tensor_of_output
    from captum_bilinear.adapters import as_dual_encoder

    dual = as_dual_encoder(model)
    shapes: List[Tuple[int, ...]] = []

    def keep(module: Any, args: Any, output: Any) -> None:
        shapes.append(tuple(_first_tensor_of_output(output).shape))

    handle = layer.register_forward_hook(keep)
    try:
        with torch.no_grad():
            dual.embed_b(*as_tuple(inputs), *as_tuple(additional_forward_args))
    finally:
        handle.remove()
    if not shapes:
        raise ValueError("layer: side b's encoder never calls this module; pass a module of the image tower")
    if len(shapes[0]) != 4:
        raise ValueError(f"layer: its output has shape {shapes[0]}, not a (batch, C, H, W) feature map; a transformer "
                         "layer's patch grid comes from the model's patch size (grid_size / has_cls)")
    return shapes[0][2], shapes[0][3]


def spectrogram_cells(values: Any, freq_ratio: int, grid_size: Optional[Tuple[int, int]] = None) -> Tensor:
    """CLAP (HTSAT) audio positions unfolded to a (mel band, time) grid.

    HTSAT folds the spectrogram's time axis into ``freq_ratio`` chunks stacked as rows of
    a square image (chunk ``c``'s mel bins are rows ``c * F .. (c + 1) * F``, its frames
    the columns) before patching. A stage's ``(H, W)`` grid of positions is unfolded so
    that chunk ``c``'s rows continue the time axis: cell ``(f, c * W + t)`` is position
    ``(c * H / freq_ratio + f) * W + t``. Rows are mel bands from low to high, columns
    time from start to end.

    Args:
        values: ``(..., positions)`` audio-side values, e.g. ``span_token_map`` of ``A``
            transposed, or ``A[span].sum(0)``.
        freq_ratio: ``config.audio_config.spec_size // config.audio_config.num_mel_bins``.
        grid_size: the stage's ``(H, W)``; None for a square grid.

    Returns:
        ``(..., H / freq_ratio, freq_ratio * W)``.

    Example:
        >>> spectrogram_cells(torch.arange(16.), freq_ratio=2)  # 4x4 positions, 2 chunks
        tensor([[ 0.,  1.,  2.,  3.,  8.,  9., 10., 11.],
                [ 4.,  5.,  6.,  7., 12., 13., 14., 15.]])
    """
    tensor = as_tensor(values, "values")
    height, width = _grid(grid_size, tensor.shape[-1])
    ratio = int(freq_ratio)
    if ratio < 1 or height % ratio:
        raise ValueError(f"freq_ratio: expected a positive divisor of the grid's {height} rows, got {freq_ratio!r}")
    grid = tensor.reshape(*tensor.shape[:-1], ratio, height // ratio, width)
    return grid.transpose(-3, -2).reshape(*tensor.shape[:-1], height // ratio, ratio * width)
