"""Dual encoders: two embedding functions and a (cosine) similarity between them.

:class:`DualEncoder` is what every method of this package attributes. HuggingFace
``CLIPModel`` and ``SiglipModel`` are wrapped into one automatically by
:func:`as_dual_encoder` (side a = text, side b = image, cosine similarity, scale 1).
"""

from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from captum_bilinear._utils.callables import as_tuple, embedding_of, modules_behind
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

SideInputs = Union[Tensor, Tuple[Any, ...]]
ReferenceFunction = Callable[[Tuple[Tensor, ...], Tuple[Any, ...]], Tuple[Tensor, ...]]
CheckFunction = Callable[[Tuple[Tensor, ...], Optional[Tuple[Tensor, ...]]], None]
PositionMaskFunction = Callable[[Tuple[Tensor, ...], Tuple[Any, ...]], Optional[Tensor]]


class DualEncoder(nn.Module):
    r"""Two encoders and the similarity ``s = scale * <g(a), h(b)>`` of their embeddings.

    Args:
        encode_a: ``encode_a(*inputs_a, *extra_a) -> (batch, D)`` (a Tensor, or an output
            whose ``pooler_output`` is one).
        encode_b: the same for side b. A Siamese encoder passes the same callable twice.
        normalize: divide each embedding by its norm inside the encoder, so the similarity
            is the cosine and the completeness identity holds exactly for it.
        scale: constant factor of the similarity.
        reference_a, reference_b: ``reference(inputs, extra) -> baselines`` giving the
            default reference of a side (default: zeros, as in Captum).
        check_a, check_b: ``check(inputs, baselines_or_None)`` raising ``ValueError`` /
            ``TypeError`` for inputs this side cannot take.
        token_head_a, token_head_b: ``head(hidden) -> (batch, positions, D)``, the encoder's
            output head applied to every position (final norm and projection), used by
            :class:`TokenPatchSimilarity`.
        output_layer_a, output_layer_b: the module whose output is the encoder's last
            hidden state (what the token head is applied to for ``variant="output"``).
        position_mask_a, position_mask_b: ``mask(inputs, extra) -> bool (batch, positions)``
            or None: the positions that carry input (False: padding the encoder does not
            attend to, e.g. ``attention_mask == 0``). Padding is never a player of the
            perturbation methods. None (the default): every position carries input.

    The modules the encode functions use (modules, bound methods of modules, modules in
    a ``functools.partial`` or a closure) become submodules, so attributions can check
    that a layer belongs to the model and set it to eval mode during a call.

    Example:
        >>> import torch
        >>> from captum_bilinear import DualEncoder
        >>> text_encoder = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Flatten())
        >>> image_encoder = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Flatten())
        >>> model = DualEncoder(text_encoder, image_encoder)
        >>> model(torch.randn(2, 1, 4), torch.randn(2, 1, 2)).shape
        torch.Size([2])
    """

    def __init__(
        self,
        encode_a: Callable[..., Any],
        encode_b: Callable[..., Any],
        normalize: bool = True,
        scale: float = 1.0,
        *,
        reference_a: Optional[ReferenceFunction] = None,
        reference_b: Optional[ReferenceFunction] = None,
        check_a: Optional[CheckFunction] = None,
        check_b: Optional[CheckFunction] = None,
        token_head_a: Optional[Callable[[Tensor], Tensor]] = None,
        token_head_b: Optional[Callable[[Tensor], Tensor]] = None,
        output_layer_a: Optional[nn.Module] = None,
        output_layer_b: Optional[nn.Module] = None,
        position_mask_a: Optional[PositionMaskFunction] = None,
        position_mask_b: Optional[PositionMaskFunction] = None,
    ) -> None:
        super().__init__()
        if not callable(encode_a) or not callable(encode_b):
            raise TypeError("encode_a/encode_b: expected callables returning (batch, D) embeddings")
        self.encode_a = encode_a
        self.encode_b = encode_b
        self.normalize = normalize
        self.scale = float(scale)
        self.reference_a = reference_a
        self.reference_b = reference_b
        self.check_a = check_a
        self.check_b = check_b
        self.token_head_a = token_head_a
        self.token_head_b = token_head_b
        self.output_layer_a = output_layer_a
        self.output_layer_b = output_layer_b
        self.position_mask_a = position_mask_a
        self.position_mask_b = position_mask_b
        owners: List[nn.Module] = []
        for module in modules_behind(encode_a) + modules_behind(encode_b):
            if not any(module is known for known in owners):
                owners.append(module)
        # Registered only when not already a submodule by attribute assignment above.
        self.encoders = nn.ModuleList([m for m in owners if m is not encode_a and m is not encode_b])
        self._knows_its_modules = bool(owners)

    @property
    def knows_its_modules(self) -> bool:
        """Whether the modules behind the encode functions could be found."""
        return self._knows_its_modules

    def _embed(self, encode: Callable[..., Any], args: Tuple[Any, ...]) -> Tensor:
        embedding = embedding_of(encode(*args))
        if self.normalize:
            embedding = embedding / embedding.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return embedding

    def embed_a(self, *args: Any) -> Tensor:
        """Side a's (normalized) embedding of ``encode_a(*args)``."""
        return self._embed(self.encode_a, args)

    def embed_b(self, *args: Any) -> Tensor:
        """Side b's (normalized) embedding of ``encode_b(*args)``."""
        return self._embed(self.encode_b, args)

    def forward(
        self,
        inputs_a: SideInputs,
        inputs_b: SideInputs,
        extra_a: Any = None,
        extra_b: Any = None,
    ) -> Tensor:
        """The similarity ``(batch,)`` of each pair."""
        embedding_a = self.embed_a(*as_tuple(inputs_a), *as_tuple(extra_a))
        embedding_b = self.embed_b(*as_tuple(inputs_b), *as_tuple(extra_b))
        return self.scale * (embedding_a * embedding_b).sum(-1)

    def default_baselines_a(self, inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        if self.reference_a is not None:
            return as_tuple(self.reference_a(inputs, extra))
        return tuple(torch.zeros_like(x) for x in inputs)

    def input_positions(self, side: str, inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Optional[Tensor]:
        """bool ``(batch, positions)`` of the positions of side ``"a"`` / ``"b"`` that carry
        input (not padding), or None when every position does (or it is unknown)."""
        mask_function = self.position_mask_a if side == "a" else self.position_mask_b
        if mask_function is None:
            return None
        mask = mask_function(inputs, extra)
        return None if mask is None else mask.to(torch.bool)

    def default_baselines_b(self, inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        if self.reference_b is not None:
            return as_tuple(self.reference_b(inputs, extra))
        return tuple(torch.zeros_like(x) for x in inputs)


# --------------------------------------------------------------------- HF adapters


def _hf_dual_encoder_classes() -> Tuple[type, ...]:
    import transformers

    names = ("CLIPModel", "SiglipModel")
    return tuple(getattr(transformers, name) for name in names if hasattr(transformers, name))


def is_supported_hf_model(model: Any) -> bool:
    """Whether ``model`` is a HuggingFace model :func:`as_dual_encoder` wraps
    (``CLIPModel``, ``SiglipModel``).

    Example:
        >>> is_supported_hf_model(nn.Linear(2, 2))
        False
    """
    return isinstance(model, nn.Module) and isinstance(model, _hf_dual_encoder_classes())


def _check_token_ids(inputs: Tuple[Tensor, ...], name: str = "inputs[0]") -> Tensor:
    if len(inputs) < 1 or not isinstance(inputs[0], Tensor):
        raise TypeError(f"{name}: expected input_ids, a (batch, length) integer Tensor")
    input_ids = inputs[0]
    if input_ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8) or input_ids.dim() != 2:
        raise TypeError(
            f"{name}: expected input_ids as a (batch, length) integer Tensor, got {input_ids.dtype} "
            f"of shape {tuple(input_ids.shape)}"
        )
    return input_ids


def _check_pixels(inputs: Tuple[Tensor, ...], channels: int, name: str = "inputs[1]") -> Tensor:
    if len(inputs) < 1 or not isinstance(inputs[0], Tensor):
        raise TypeError(f"{name}: expected pixel_values, a (batch, channels, height, width) float Tensor")
    pixels = inputs[0]
    if not torch.is_floating_point(pixels):
        raise TypeError(
            f"{name}: pixel_values must be a floating-point Tensor of normalized pixels "
            f"(as the model's image processor returns them), got {pixels.dtype}"
        )
    if pixels.dim() != 4 or pixels.shape[1] != channels:
        raise ValueError(
            f"{name}: expected pixel_values of shape (batch, {channels}, height, width), got {tuple(pixels.shape)}"
        )
    return pixels


def _attention_mask_positions(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Optional[Tensor]:
    """The text side's attention mask (the first additional forward argument), if given."""
    mask = extra[0] if extra else None
    return mask.to(torch.bool) if isinstance(mask, Tensor) else None


def _clip_end_positions(input_ids: Tensor, eos_token_id: int) -> Tensor:
    """The position CLIP's text model pools at (see ``CLIPTextTransformer.forward``)."""
    if eos_token_id == 2:  # legacy configs: the first maximal id
        return input_ids.argmax(dim=-1)
    return first_positions_of(input_ids, eos_token_id)


def _image_side(model: nn.Module, image_mean: Sequence[float], image_std: Sequence[float]) -> Tuple[Any, Any, Any]:
    channels = model.config.vision_config.num_channels

    def encode_image(pixel_values: Tensor, interpolate_pos_encoding: bool = False) -> Any:
        # transformers < 4.46 has no interpolate_pos_encoding: pass it only when asked for
        extra = {"interpolate_pos_encoding": True} if interpolate_pos_encoding else {}
        return model.get_image_features(pixel_values=pixel_values, **extra)

    def reference_image(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        return (black_image(inputs[0], image_mean, image_std),)

    def check_image(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]]) -> None:
        _check_pixels(inputs, channels)
        if baselines is not None:
            _check_pixels(baselines, channels, name="baselines[1]")

    return encode_image, reference_image, check_image


def _clip(model: nn.Module, image_mean: Sequence[float], image_std: Sequence[float]) -> DualEncoder:
    text_config = model.config.text_config
    eos_token_id = text_config.eos_token_id
    pad_token_id = text_config.pad_token_id

    def encode_text(input_ids: Tensor, attention_mask: Optional[Tensor] = None, position_ids: Optional[Tensor] = None) -> Any:
        return model.get_text_features(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)

    def reference_text(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        input_ids = inputs[0]
        if pad_token_id is None or pad_token_id == eos_token_id:
            raise ValueError(
                "baselines[0]: the model's config has no pad_token_id distinct from its EOS id; "
                "pass a text baseline explicitly"
            )
        return (text_reference(input_ids, pad_token_id, _clip_end_positions(input_ids, eos_token_id)),)

    def check_text(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]]) -> None:
        input_ids = _check_token_ids(inputs)
        ends = _clip_end_positions(input_ids, eos_token_id)
        if bool((ends < 0).any()):
            row = int((ends < 0).nonzero()[0])
            raise ValueError(
                f"inputs[0]: input_ids row {row} has no EOS token (id {eos_token_id}); CLIP pools at the EOS position"
            )
        if baselines is not None:
            baseline_ids = _check_token_ids(baselines, name="baselines[0]")
            if baseline_ids.shape != input_ids.shape:
                raise ValueError(
                    f"baselines[0]: the text baseline must have the input's shape {tuple(input_ids.shape)}, "
                    f"got {tuple(baseline_ids.shape)}"
                )
            baseline_ends = _clip_end_positions(baseline_ids, eos_token_id)
            if not torch.equal(baseline_ends, ends):
                raise ValueError(
                    "baselines[0]: the text baseline's EOS positions "
                    f"{baseline_ends.tolist()} differ from the input's {ends.tolist()}; CLIP pools at the EOS "
                    "position, so a reference must keep it (e.g. [BOS, PAD..., EOS])"
                )

    encode_image, reference_image, check_image = _image_side(model, image_mean, image_std)
    return DualEncoder(
        encode_text,
        encode_image,
        reference_a=reference_text,
        reference_b=reference_image,
        check_a=check_text,
        check_b=check_image,
        token_head_a=lambda hidden: model.text_projection(model.text_model.final_layer_norm(hidden)),
        token_head_b=lambda hidden: model.visual_projection(model.vision_model.post_layernorm(hidden)),
        output_layer_a=model.text_model.encoder.layers[-1],
        output_layer_b=model.vision_model.encoder.layers[-1],
        position_mask_a=_attention_mask_positions,
    )


def _siglip(model: nn.Module, image_mean: Sequence[float], image_std: Sequence[float]) -> DualEncoder:
    text_config = model.config.text_config
    special_ids = [text_config.pad_token_id, text_config.eos_token_id, text_config.bos_token_id]

    def encode_text(input_ids: Tensor, attention_mask: Optional[Tensor] = None, position_ids: Optional[Tensor] = None) -> Any:
        return model.get_text_features(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)

    def reference_text(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        if text_config.pad_token_id is None:
            raise ValueError("baselines[0]: the model's config has no pad_token_id; pass a text baseline explicitly")
        return (special_token_reference(inputs[0], text_config.pad_token_id, special_ids),)

    def check_text(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]]) -> None:
        input_ids = _check_token_ids(inputs)
        if baselines is not None:
            baseline_ids = _check_token_ids(baselines, name="baselines[0]")
            if baseline_ids.shape != input_ids.shape:
                raise ValueError(
                    f"baselines[0]: the text baseline must have the input's shape {tuple(input_ids.shape)}, "
                    f"got {tuple(baseline_ids.shape)}"
                )

    encode_image, reference_image, check_image = _image_side(model, image_mean, image_std)
    # SigLIP's image head pools by attention, so it has no per-patch projection.
    return DualEncoder(
        encode_text,
        encode_image,
        reference_a=reference_text,
        reference_b=reference_image,
        check_a=check_text,
        check_b=check_image,
        token_head_a=lambda hidden: model.text_model.head(model.text_model.final_layer_norm(hidden)),
        output_layer_a=model.text_model.encoder.layers[-1],
        output_layer_b=model.vision_model.encoder.layers[-1],
        position_mask_a=_attention_mask_positions,
    )


def as_dual_encoder(
    model: Any,
    image_mean: Optional[Sequence[float]] = None,
    image_std: Optional[Sequence[float]] = None,
    processor: Any = None,
) -> DualEncoder:
    """Wraps a HuggingFace ``CLIPModel`` or ``SiglipModel`` (a :class:`DualEncoder` is
    returned as it is).

    Side a is the text (``input_ids``, extra arguments ``attention_mask``,
    ``position_ids``), side b the image (``pixel_values``); the similarity is the cosine
    of the projected embeddings (scale 1). The default text reference is
    ``[BOS, PAD..., EOS]`` of each caption's length with its EOS where the caption has it
    (SigLIP: all non-special tokens replaced by PAD), the default image reference a black
    image in the model's normalized pixel space.

    Args:
        model: the model, loaded as usual with ``from_pretrained``.
        image_mean, image_std: pixel statistics for the black reference image; default
            those of the model family's processor (or of ``processor``, when given).
        processor: optional ``CLIPProcessor`` / ``SiglipProcessor`` to read them from.

    Example:
        >>> from transformers import CLIPConfig, CLIPModel
        >>> model = CLIPModel(CLIPConfig(
        ...     text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
        ...     vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        ...                        image_size=32, patch_size=8),
        ...     projection_dim=16))
        >>> as_dual_encoder(model).scale
        1.0
    """
    if isinstance(model, DualEncoder):
        return model
    if not is_supported_hf_model(model):
        raise TypeError(
            "model: expected a transformers CLIPModel or SiglipModel, or a captum_bilinear.DualEncoder "
            f"wrapping two encoders; got {type(model).__name__}"
        )
    import transformers

    is_siglip = hasattr(transformers, "SiglipModel") and isinstance(model, transformers.SiglipModel)
    image_processor = getattr(processor, "image_processor", processor)
    default_mean, default_std = (SIGLIP_IMAGE_MEAN, SIGLIP_IMAGE_STD) if is_siglip else (CLIP_IMAGE_MEAN, CLIP_IMAGE_STD)
    mean = image_mean if image_mean is not None else getattr(image_processor, "image_mean", None) or default_mean
    std = image_std if image_std is not None else getattr(image_processor, "image_std", None) or default_std
    return (_siglip if is_siglip else _clip)(model, mean, std)
