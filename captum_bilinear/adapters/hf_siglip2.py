"""HuggingFace ``Siglip2Model`` with NaFlex images, as its processor gives them.

Text (side a) as SigLIP's (:mod:`captum_bilinear.adapters.hf_siglip`). Image (side b):
``pixel_values`` of shape ``(batch, max_num_patches, channels * patch_size**2)`` (the
processor's patches, each image resized to its own grid and padded to
``max_num_patches`` slots), additional forward arguments ``(pixel_attention_mask,
spatial_shapes)``::

    bii.attribute((input_ids, pixel_values), additional_forward_args=(None, (pixel_attention_mask, spatial_shapes)))

A layer of the image tower has one position per patch slot; slot ``j < h * w`` of an
image with ``spatial_shapes = (h, w)`` is the cell ``(j // w, j % w)`` of its grid
(:func:`captum_bilinear.selection.naflex_cells`). Slots whose ``pixel_attention_mask``
is 0 are padding: no attention reaches them, so their interactions are exactly zero,
and they are never players. Images of different aspect ratios share a batch. Default
image reference: every patch slot of the image black in the model's normalized pixel
space, padding slots left as they are.
"""

import contextlib
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from captum_bilinear.adapters._hf_sides import check_argument_count, pixel_statistics, text_side
from captum_bilinear.adapters.hf_siglip import layer_lists, special_reference  # noqa: F401  (layer_lists: the same towers)
from captum_bilinear.references import SIGLIP_IMAGE_MEAN, SIGLIP_IMAGE_STD

CLASSES = ("Siglip2Model",)
_NAMES = ("pixel_attention_mask", "spatial_shapes")


def black_patches(pixel_values: Tensor, pixel_attention_mask: Optional[Tensor], image_mean: Sequence[float],
                  image_std: Sequence[float]) -> Tensor:
    """Black patches in the normalized pixel space, shaped like ``pixel_values``
    ``(batch, slots, patch_size * patch_size * channels)`` (the processor puts the
    channel last within a patch); padding slots keep their values.

    Example:
        >>> patches = torch.ones(1, 3, 2 * 2 * 3)      # 3 slots of 2x2 RGB patches
        >>> black_patches(patches, torch.tensor([[1, 1, 0]]), (0.5,) * 3, (0.5,) * 3)[0, :, 0]
        tensor([-1., -1.,  1.])
    """
    black = -torch.as_tensor(image_mean, dtype=pixel_values.dtype) / torch.as_tensor(image_std, dtype=pixel_values.dtype)
    pixels_per_patch = pixel_values.shape[-1] // black.numel()
    patch = black.to(pixel_values.device).repeat(pixels_per_patch)
    if pixel_attention_mask is None:
        return patch.expand_as(pixel_values).clone()
    return torch.where(pixel_attention_mask[..., None] != 0, patch, pixel_values)


@contextlib.contextmanager
def _head_mask_follows_batch(head: Optional[nn.Module]) -> Iterator[None]:
    """Within the block, the attention-pooling head expands a mask of batch 1 to the
    batch of its hidden states, so that many activations substituted at a layer run
    through the layers above it in one pass (``nn.MultiheadAttention`` does not
    broadcast its ``key_padding_mask``)."""
    if head is None:
        yield
        return

    def expand(module: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        hidden = args[0] if args else kwargs.get("hidden_state")
        mask = args[1] if len(args) > 1 else kwargs.get("attention_mask")
        if not isinstance(hidden, Tensor) or not isinstance(mask, Tensor) or mask.shape[0] != 1 or hidden.shape[0] == 1:
            return None
        mask = mask.expand(hidden.shape[0], *mask.shape[1:])
        if len(args) > 1:
            return (args[0], mask, *args[2:]), kwargs
        return args, {**kwargs, "attention_mask": mask}

    handle = head.register_forward_pre_hook(expand, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def _check_patches(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...], values_per_patch: int, name: str) -> None:
    pixels = inputs[0] if inputs and isinstance(inputs[0], Tensor) else None
    if pixels is None or not torch.is_floating_point(pixels) or pixels.dim() != 3 or pixels.shape[-1] != values_per_patch:
        shape = tuple(pixels.shape) if isinstance(pixels, Tensor) else type(pixels).__name__
        raise ValueError(
            f"{name}: expected SigLIP-2 pixel_values as its processor gives them, a float Tensor (batch, "
            f"max_num_patches, {values_per_patch}) of patches; got {shape}"
        )
    check_argument_count(extra, _NAMES, 1, "image")
    mask, shapes = (tuple(extra) + (None, None))[:2]
    if not isinstance(shapes, Tensor) or shapes.dim() != 2 or shapes.shape != (pixels.shape[0], 2):
        raise ValueError(
            "additional_forward_args[1]: expected (pixel_attention_mask, spatial_shapes) as the processor gives them, "
            f"spatial_shapes a (batch, 2) Tensor of each image's patch rows and columns; got "
            f"{tuple(shapes.shape) if isinstance(shapes, Tensor) else type(shapes).__name__}"
        )
    cells = shapes.long().prod(-1)
    if bool((shapes < 1).any()) or bool((cells > pixels.shape[1]).any()):
        raise ValueError(f"additional_forward_args[1] (spatial_shapes): grids {shapes.tolist()} must be positive and "
                         f"have at most the {pixels.shape[1]} patch slots of pixel_values")
    if mask is None:
        return
    if not isinstance(mask, Tensor) or mask.shape != pixels.shape[:2]:
        raise ValueError(f"additional_forward_args[1] (pixel_attention_mask): expected a Tensor of shape "
                         f"{tuple(pixels.shape[:2])}, one entry per patch slot")
    slots = torch.arange(pixels.shape[1], device=mask.device)
    expected = slots[None, :] < cells.to(mask.device)[:, None]
    if not torch.equal(mask != 0, expected):
        row = int(((mask != 0) != expected).any(-1).nonzero()[0])
        raise ValueError(
            f"additional_forward_args[1] (pixel_attention_mask): row {row} does not mark exactly the first "
            f"{int(cells[row])} slots (its spatial_shapes {shapes[row].tolist()}) as patches; pass the mask and the "
            "shapes the processor returned together"
        )


def sides(model: Any, image_mean: Optional[Sequence[float]], image_std: Optional[Sequence[float]],
          processor: Any) -> Dict[str, Any]:
    """The DualEncoder arguments of a SigLIP-2 model (NaFlex).

    Example:
        >>> from transformers import Siglip2Config, Siglip2Model  # doctest: +SKIP
        >>> model = Siglip2Model(Siglip2Config())                  # doctest: +SKIP
        >>> sides(model, None, None, None)["position_mask_b"]((pixel_values,), (pixel_attention_mask, spatial_shapes))  # doctest: +SKIP
    """
    text_config, vision_config = model.config.text_config, model.config.vision_config
    values_per_patch = vision_config.num_channels * vision_config.patch_size ** 2
    mean, std = pixel_statistics(processor, image_mean, image_std, SIGLIP_IMAGE_MEAN, SIGLIP_IMAGE_STD)
    head = getattr(model.vision_model, "head", None)

    def encode_image(pixel_values: Tensor, pixel_attention_mask: Optional[Tensor] = None,
                     spatial_shapes: Optional[Tensor] = None) -> Any:
        with _head_mask_follows_batch(head):
            return model.get_image_features(pixel_values=pixel_values, pixel_attention_mask=pixel_attention_mask,
                                            spatial_shapes=spatial_shapes)

    def check_image(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]) -> None:
        _check_patches(inputs, extra, values_per_patch, "inputs[1]")
        if baselines is not None:
            _check_patches(baselines, extra, values_per_patch, "baselines[1]")

    def reference_image(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        return (black_patches(inputs[0], extra[0] if extra else None, mean, std),)

    def slot_positions(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Optional[Tensor]:
        mask = extra[0] if extra else None
        return mask.to(torch.bool) if isinstance(mask, Tensor) else None

    return dict(
        **text_side(model, text_config, reference=special_reference(text_config)),
        encode_b=encode_image,
        reference_b=reference_image,
        check_b=check_image,
        position_mask_b=slot_positions,
        token_head_a=lambda hidden: model.text_model.head(model.text_model.final_layer_norm(hidden)),
        output_layer_a=model.text_model.encoder.layers[-1],
        output_layer_b=model.vision_model.encoder.layers[-1],
        towers=(model.text_model, model.vision_model),
    )
