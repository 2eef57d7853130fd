"""open_clip models (``open_clip.create_model(...)``) as :class:`~captum_bilinear.DualEncoder`.

Side a is the text as open_clip's tokenizer makes it (``(batch, 77)`` token ids,
zero-padded after the end-of-text token), side b the images as its ``preprocess``
makes them; neither side takes additional forward arguments (open_clip builds its own
attention masks). The similarity is the cosine of ``encode_text`` and
``encode_image`` (scale 1, the logit scale left out). Layers are modules of the two
towers, e.g. ``(model.transformer.resblocks[-2], model.visual.transformer.resblocks[-2])``;
a layer of the image tower given for the text side is refused.

ResNet image towers (``RN50`` ..., OpenAI's ResNet CLIPs among open_clip's pretrained
weights) work the same way: a stage such as ``model.visual.layer4`` (or one of its
blocks) outputs a ``(batch, C, H, W)`` map whose ``H * W`` cells are the image positions
(row-major; :func:`captum_bilinear.selection.feature_map_grid` gives ``(H, W)``), with
``C`` as hidden dimension; the attention pool above it makes the embedding.

Default references: for the usual end-of-text pooling (``text_pool_type`` ``"argmax"``
or ``"eos"``) ``[SOT, 0..., EOT, 0...]``: each text's tokens between the start and the
end-of-text token replaced by 0, open_clip's padding id, so that length, start token and
pooled position are the input's; for other pooling every token but the padding and the
end-of-text token replaced by 0. The image reference is a black image in the model's
normalized pixel space (its preprocess mean and std).

Padding: in a causal text tower (OpenAI-style CLIP) no position after the pooled
end-of-text token reaches it, so those positions carry no input: their interactions
are exactly zero and the perturbation methods never make them players.

open_clip's attention blocks are ``nn.MultiheadAttention``, whose fast path has no
forward-mode derivative: every attribution call runs with it switched off (and the
process-wide switch restored afterwards).
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from captum_bilinear._utils.model_state import without_mha_fast_path
from captum_bilinear.adapters._checks import (TokenLimits, check_no_extra, check_pixels, check_same_shape, check_token_ids,
                                              pair_size)
from captum_bilinear.encoders import DualEncoder
from captum_bilinear.references import (
    CLIP_IMAGE_MEAN,
    CLIP_IMAGE_STD,
    black_image,
    first_positions_of,
    special_token_reference,
    text_reference,
)

#: Pooling types whose pooled position is the end-of-text token.
_END_POOLING = ("argmax", "eos")


def _defined_in_open_clip(model: Any) -> Tuple[str, ...]:
    return tuple(cls.__name__ for cls in type(model).__mro__ if cls.__module__.split(".")[0] == "open_clip")


def accepts(model: Any) -> bool:
    """Whether ``model`` is an open_clip model (without importing open_clip).

    Example:
        >>> accepts(torch.nn.Linear(2, 2))
        False
    """
    return isinstance(model, nn.Module) and bool(_defined_in_open_clip(model))


class _TextTower:
    """What the adapter reads off open_clip's text tower (``CLIP`` keeps it flat on the
    model, ``CustomTextCLIP`` as ``model.text``)."""

    def __init__(self, model: Any) -> None:  # open_clip's CLIP / CustomTextCLIP (untyped: read duck-typed)
        classes = _defined_in_open_clip(model)
        if "CLIP" in classes:
            tower, self.pool_type, self.eos_id = model, model.text_pool_type, getattr(model, "text_eos_id", None)
            self.pad_id, self.exact_length, self.pad_masked = 0, True, False
        elif "CustomTextCLIP" in classes and type(model.text).__name__ == "TextTransformer":
            tower = model.text
            self.pool_type, self.eos_id, self.pad_id = tower.pool_type, tower.eos_id, tower.pad_id
            self.exact_length, self.pad_masked = False, bool(getattr(tower, "use_pad_mask", False))
            if getattr(tower, "cls_emb", None) is not None:
                raise TypeError("model: open_clip text towers with an appended class token (CoCa-style) are not supported")
        else:
            raise TypeError(
                f"model: open_clip {type(model).__name__} with a {type(getattr(model, 'text', None)).__name__} text tower "
                "is not wrapped automatically (open_clip CLIP and CustomTextCLIP with its own TextTransformer are); wrap "
                "it yourself: DualEncoder(model.encode_text, model.encode_image)"
            )
        if self.pool_type not in ("argmax", "eos", "first", "last"):
            raise TypeError(f"model: open_clip text_pool_type {self.pool_type!r} gives no single text embedding")
        if self.pool_type == "eos" and self.eos_id is None:
            raise TypeError("model: open_clip text_pool_type 'eos' pools at the end-of-text token, but the model names "
                            "none (text_eos_id / eos_id)")
        self.tower = tower
        self.causal = tower.attn_mask is not None
        self.context_length = int(tower.context_length)
        self.vocab_size = int(tower.vocab_size)

    def pooled_positions(self, text: Tensor) -> Tensor:
        """Per row, the position open_clip's ``text_global_pool`` reads (-1: absent)."""
        if self.pool_type == "argmax":
            return text.argmax(dim=-1)
        if self.pool_type == "eos":
            assert self.eos_id is not None  # checked in __init__
            return first_positions_of(text, self.eos_id)
        if self.pool_type == "first":
            return torch.zeros(text.shape[0], dtype=torch.long, device=text.device)
        return torch.full((text.shape[0],), text.shape[1] - 1, dtype=torch.long, device=text.device)

    def reference(self, text: Tensor) -> Tensor:
        if self.pool_type in _END_POOLING:
            return text_reference(text, self.pad_id, self.pooled_positions(text))
        return special_token_reference(text, self.pad_id, [self.pad_id, self.eos_id])

    def positions(self, text: Tensor) -> Optional[Tensor]:
        """The positions that reach the pooled token (None: all of them)."""
        if self.pad_masked:
            return text != self.pad_id
        if not self.causal:
            return None
        position = torch.arange(text.shape[1], device=text.device)
        return position.view(1, -1) <= self.pooled_positions(text).view(-1, 1)

    def check(self, inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]) -> None:
        check_no_extra(extra, "additional_forward_args[0]", "open_clip's text encoder (encode_text)")
        limits = TokenLimits(vocab_size=self.vocab_size, max_length=self.context_length)
        text = check_token_ids(inputs, **limits)
        if self.exact_length and text.shape[1] != self.context_length:
            raise ValueError(
                f"inputs[0]: open_clip's CLIP text encoder takes exactly {self.context_length} tokens per text "
                f"(model.context_length), got {text.shape[1]}; make them with its tokenizer: "
                "open_clip.get_tokenizer(model_name)(texts)"
            )
        left_padded = (text[:, 0] == self.pad_id) & (text != self.pad_id).any(dim=-1)
        if bool(left_padded.any()):
            raise ValueError(
                f"inputs[0]: text row {int(left_padded.nonzero()[0])} starts with the padding id {self.pad_id} "
                "(left padding?); open_clip's tokenizer puts the start-of-text token first and pads on the right"
            )
        ends = self.pooled_positions(text)
        if bool((ends < 0).any()):
            raise ValueError(
                f"inputs[0]: text row {int((ends < 0).nonzero()[0])} has no end-of-text token (id {self.eos_id}); "
                "the model pools at it"
            )
        if baselines is not None:
            baseline = check_token_ids(baselines, name="baselines[0]", **limits)
            check_same_shape(baseline, text)
            baseline_ends = self.pooled_positions(baseline)
            if self.pool_type in _END_POOLING and not torch.equal(baseline_ends, ends):
                raise ValueError(
                    f"baselines[0]: the text baseline's end-of-text positions {baseline_ends.tolist()} differ from "
                    f"the input's {ends.tolist()}; the model pools there, so a reference must keep it "
                    "(e.g. [SOT, 0..., EOT, 0...])"
                )


def _normalize_statistics(processor: Any) -> Tuple[Optional[Sequence[float]], Optional[Sequence[float]]]:
    """The mean and std of the ``Normalize`` step of a torchvision ``Compose`` (open_clip's
    ``preprocess``), if any."""
    for step in getattr(processor, "transforms", ()):
        if type(step).__name__ == "Normalize":
            return tuple(step.mean), tuple(step.std)
    return None, None


def _projected(hidden: Tensor, norm: nn.Module, projection: Any) -> Tensor:
    hidden = norm(hidden)
    if projection is None:
        return hidden
    return projection(hidden) if isinstance(projection, nn.Module) else hidden @ projection


def wrap(
    model: nn.Module,
    image_mean: Optional[Sequence[float]] = None,
    image_std: Optional[Sequence[float]] = None,
    processor: Any = None,
) -> DualEncoder:
    """An open_clip ``CLIP`` / ``CustomTextCLIP`` as a :class:`DualEncoder` (see the
    module's description).

    Args:
        model: the model, e.g. ``open_clip.create_model("ViT-B-32", pretrained=...)``.
        image_mean, image_std: pixel statistics for the black reference image; default
            those of ``processor``'s ``Normalize`` step when given, else the model's
            (``model.visual.image_mean`` / ``image_std``, set by ``create_model``), else
            OpenAI CLIP's.
        processor: optional open_clip ``preprocess`` transform to read them from.

    Example:
        >>> import open_clip  # doctest: +SKIP
        >>> model = open_clip.create_model("ViT-B-32", pretrained="openai")  # doctest: +SKIP
        >>> dual = wrap(model, processor=preprocess)  # or as_dual_encoder(model)  # doctest: +SKIP
    """
    clip: Any = model  # open_clip's towers and their modules are read duck-typed (open_clip is untyped)
    text = _TextTower(clip)
    visual = clip.visual
    processor_mean, processor_std = _normalize_statistics(processor)
    mean = image_mean or processor_mean or getattr(visual, "image_mean", None) or CLIP_IMAGE_MEAN
    std = image_std or processor_std or getattr(visual, "image_std", None) or CLIP_IMAGE_STD
    conv = getattr(visual, "conv1", None)
    channels = conv.in_channels if isinstance(conv, nn.Conv2d) else 3
    image_size = pair_size(getattr(visual, "image_size", None))

    def encode_text(tokens: Tensor) -> Tensor:
        return clip.encode_text(tokens)

    def encode_image(images: Tensor) -> Tensor:
        return clip.encode_image(images)

    def check_image(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]) -> None:
        check_no_extra(extra, "additional_forward_args[1]", "open_clip's image encoder (encode_image)")
        check_pixels(inputs, channels, image_size=image_size, resize_hint="make them with the model's preprocess transform")
        if baselines is not None:
            check_pixels(baselines, channels, name="baselines[1]", image_size=image_size)

    heads: Dict[str, Any] = {}  # the per-position heads and output layers the model has
    tower = text.tower
    if hasattr(tower, "transformer") and hasattr(tower, "ln_final") and text.pool_type in _END_POOLING:
        heads.update(token_head_a=lambda hidden: _projected(hidden, tower.ln_final, tower.text_projection),
                     output_layer_a=tower.transformer.resblocks[-1])
    plain_pool = getattr(visual, "attn_pool", None) is None and not getattr(visual, "final_ln_after_pool", False)
    if hasattr(visual, "transformer") and hasattr(visual, "ln_post") and plain_pool:
        heads.update(token_head_b=lambda hidden: _projected(hidden, visual.ln_post, visual.proj),
                     output_layer_b=visual.transformer.resblocks[-1])
    return DualEncoder(
        encode_text,
        encode_image,
        reference_a=lambda inputs, extra: (text.reference(inputs[0]),),
        reference_b=lambda inputs, extra: (black_image(inputs[0], mean, std),),
        check_a=text.check,
        check_b=check_image,
        position_mask_a=lambda inputs, extra: text.positions(inputs[0]),
        attribution_context=without_mha_fast_path,
        # CLIP keeps its text tower flat on the model: only the image tower is a module
        towers=(tower if tower is not model else None, visual),
        **heads,
    )
