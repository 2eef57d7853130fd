"""Uninformative references (baselines) for text and images.

With references that carry no content, the three reference terms of the identity
``f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b) = sum A`` are close to zero and the
interactions ``A`` decompose the similarity itself. Whether they are small for your
model can be read with ``BilinearIntegratedInteractions.similarity_terms``.
"""

from typing import Optional, Sequence

import torch
from torch import Tensor

#: Pixel statistics of OpenAI CLIP's image processor (also the HF ``CLIPImageProcessor`` default).
CLIP_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
#: Pixel statistics of SigLIP's image processor.
SIGLIP_IMAGE_MEAN = (0.5, 0.5, 0.5)
SIGLIP_IMAGE_STD = (0.5, 0.5, 0.5)


def black_image(
    pixel_values: Tensor,
    image_mean: Sequence[float] = CLIP_IMAGE_MEAN,
    image_std: Sequence[float] = CLIP_IMAGE_STD,
) -> Tensor:
    """A black image in the model's normalized pixel space, shaped like ``pixel_values``.

    Args:
        pixel_values: normalized images ``(batch, channels, height, width)``.
        image_mean, image_std: the per-channel statistics the images were normalized with
            (``processor.image_processor.image_mean`` / ``image_std``).

    Returns:
        ``(0 - mean) / std`` per channel, broadcast to ``pixel_values``' shape and dtype.

    Example:
        >>> import torch
        >>> black_image(torch.zeros(1, 3, 2, 2), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))[0, :, 0, 0]
        tensor([-1., -1., -1.])
    """
    if not torch.is_floating_point(pixel_values) or pixel_values.dim() != 4:
        raise TypeError(
            "pixel_values: expected a floating-point tensor (batch, channels, height, width), got "
            f"{pixel_values.dtype} of shape {tuple(pixel_values.shape)}"
        )
    mean = torch.as_tensor(image_mean, dtype=pixel_values.dtype, device=pixel_values.device)
    std = torch.as_tensor(image_std, dtype=pixel_values.dtype, device=pixel_values.device)
    if mean.numel() != pixel_values.shape[1] or std.numel() != pixel_values.shape[1]:
        raise ValueError(
            f"image_mean/image_std: expected {pixel_values.shape[1]} channels, "
            f"got {mean.numel()} and {std.numel()}"
        )
    return (-mean / std).view(1, -1, 1, 1).expand_as(pixel_values).clone()


def first_positions_of(input_ids: Tensor, token_id: int) -> Tensor:
    """Per row, the first position of ``token_id`` (``-1`` where it is absent).

    Example:
        >>> first_positions_of(torch.tensor([[5, 2, 9, 2], [5, 7, 7, 7]]), 2)
        tensor([ 1, -1])
    """
    found = input_ids == token_id
    first = found.int().argmax(dim=-1)
    return torch.where(found.any(dim=-1), first, torch.full_like(first, -1))


def text_reference(
    input_ids: Tensor,
    pad_token_id: int,
    end_positions: Tensor,
    keep_first: bool = True,
) -> Tensor:
    """``[BOS, PAD, ..., PAD, EOS, <rest of the input>]``: the caption's content tokens
    replaced by ``pad_token_id``, its length, start token and end-of-sequence position kept.

    Args:
        input_ids: ``(batch, length)`` token ids.
        pad_token_id: the id that replaces content tokens. It must not be the id the model
            pools at (CLIP's tokenizer pads with the EOS id; its config's ``pad_token_id``
            is the right choice).
        end_positions: ``(batch,)`` position of each row's end-of-sequence token; it and
            every later position keep the input's ids (padding stays padding). ``-1``
            means the row has none: all positions after the first are replaced.
        keep_first: keep position 0 (a BOS / CLS token).

    Returns:
        ``(batch, length)`` reference ids.

    Example:
        >>> import torch
        >>> ids = torch.tensor([[49406, 320, 1929, 49407, 49407]])
        >>> text_reference(ids, pad_token_id=1, end_positions=torch.tensor([3]))
        tensor([[49406,     1,     1, 49407, 49407]])
    """
    length = input_ids.shape[-1]
    position = torch.arange(length, device=input_ids.device).expand_as(input_ids)
    end = torch.where(end_positions < 0, torch.full_like(end_positions, length), end_positions)
    keep = position >= end.view(-1, 1)
    if keep_first:
        keep = keep | (position == 0)
    return torch.where(keep, input_ids, torch.full_like(input_ids, pad_token_id))


def special_token_reference(input_ids: Tensor, pad_token_id: int, special_ids: Sequence[Optional[int]]) -> Tensor:
    """Every token that is not one of ``special_ids`` replaced by ``pad_token_id``
    (for models that pool at a fixed position, such as SigLIP's last token).

    Example:
        >>> import torch
        >>> special_token_reference(torch.tensor([[262, 266, 1, 1]]), 1, [1])
        tensor([[1, 1, 1, 1]])
    """
    keep = torch.zeros_like(input_ids, dtype=torch.bool)
    for token_id in special_ids:
        if token_id is not None:
            keep |= input_ids == token_id
    return torch.where(keep, input_ids, torch.full_like(input_ids, pad_token_id))
