"""Dual encoders: two embedding functions and a (cosine) similarity between them.

:class:`DualEncoder` is what every method of this package attributes. Models as users
hold them -- HuggingFace dual encoders, open_clip CLIP models, sentence-transformers
``SentenceTransformer`` -- are wrapped into one automatically by
:func:`captum_bilinear.adapters.as_dual_encoder` (which builds on this module; this
module imports no adapter).
"""

import contextlib
import warnings
from typing import Any, Callable, ContextManager, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from captum_bilinear._utils.callables import as_tuple, calls_with, embedding_of, modules_behind, unique_modules

SideInputs = Union[Tensor, Tuple[Any, ...]]
ReferenceFunction = Callable[[Tuple[Tensor, ...], Tuple[Any, ...]], Tuple[Tensor, ...]]
#: ``check(inputs, baselines_or_None, extra)``; a two-argument ``check(inputs, baselines)`` is accepted too.
CheckFunction = Callable[..., None]
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
        modules: the modules the encode functions run, when they cannot be found from the
            functions themselves (see below); ``()`` says there are none.
        reference_a, reference_b: ``reference(inputs, extra) -> baselines`` giving the
            default reference of a side (default: zeros, as in Captum).
        check_a, check_b: ``check(inputs, baselines_or_None, extra)`` raising ``ValueError``
            / ``TypeError`` for arguments this side cannot take (``extra``: its additional
            forward arguments; a two-argument ``check(inputs, baselines)`` also works).
        token_head_a, token_head_b: ``head(hidden) -> (batch, positions, D)``, the encoder's
            output head applied to every position (final norm and projection), used by
            :class:`TokenPatchSimilarity`.
        output_layer_a, output_layer_b: the module whose output is the encoder's last
            hidden state (what the token head is applied to for ``variant="output"``).
        position_mask_a, position_mask_b: ``mask(inputs, extra) -> bool (batch, positions)``
            or None: the positions that carry input (False: padding the encoder does not
            attend to, e.g. ``attention_mask == 0``). Padding is never a player of the
            perturbation methods. None (the default): every position carries input.
        attribution_context: ``attribution_context() -> context manager`` entered around
            every attribution call (default: none), for settings an encoder needs while it
            is differentiated, e.g. open_clip's attention fast path switched off.
        towers: ``(tower_a, tower_b)``, the modules holding each side's layers (either may
            be None: unknown); a layer given for one side that lies in the other side's
            tower is refused (:meth:`check_layers`).

    The modules the encode functions use become submodules, so attributions can check
    that a layer belongs to the model and set it to eval mode (dropout off) during a
    call, restoring each module's train flag afterwards. They are found in a module
    passed directly, the owner of a bound method (``model.encode_text``), a
    ``functools.partial``, a closure, and the module-level names a function's code reads
    (``def embed(x): return encoder(x)`` with ``encoder`` a global). Modules reached any
    other way (an attribute of a plain object, a dictionary) cannot be seen: pass them
    as ``modules=[...]``, or a warning says that dropout may stay on.

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
        modules: Optional[Sequence[nn.Module]] = None,
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
        attribution_context: Optional[Callable[[], ContextManager[Any]]] = None,
        towers: Optional[Tuple[Optional[nn.Module], Optional[nn.Module]]] = None,
    ) -> None:
        super().__init__()
        if not callable(encode_a) or not callable(encode_b):
            raise TypeError("encode_a/encode_b: expected callables returning (batch, D) embeddings")
        if modules is not None and (
            isinstance(modules, nn.Module) or not all(isinstance(m, nn.Module) for m in modules)
        ):
            raise TypeError("modules: expected a list of torch.nn.Module (the modules the encode functions run)")
        if attribution_context is not None and not callable(attribution_context):
            raise TypeError("attribution_context: expected a callable returning a context manager")
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
        self._attribution_context = attribution_context
        if towers is not None and (len(towers) != 2 or not all(t is None or isinstance(t, nn.Module) for t in towers)):
            raise TypeError("towers: expected (tower_a, tower_b), each a torch.nn.Module or None")
        self._towers = tuple(towers) if towers is not None else (None, None)
        found = modules_behind(encode_a) + modules_behind(encode_b)
        owners = unique_modules(found + list(modules or ()))
        # Registered only when not already a submodule by attribute assignment above.
        self.encoders = nn.ModuleList([m for m in owners if m is not encode_a and m is not encode_b])
        self._knows_its_modules = bool(owners)
        if not found and modules is None:
            warnings.warn(
                "DualEncoder: no torch modules found behind encode_a / encode_b, so attributions cannot put "
                "them in eval mode (dropout would stay on) nor check that a layer belongs to the model; pass "
                "them as DualEncoder(..., modules=[...]) (modules=() if the encoders use none)",
                UserWarning,
                stacklevel=2,
            )

    @property
    def knows_its_modules(self) -> bool:
        """Whether the modules behind the encode functions are known."""
        return self._knows_its_modules

    def attribution_context(self) -> ContextManager[Any]:
        """The context every attribution call runs in (see ``attribution_context`` above;
        a no-op unless an adapter set one)."""
        if self._attribution_context is None:
            return contextlib.nullcontext()
        return self._attribution_context()

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

    def check_side(
        self, side: str, inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]
    ) -> None:
        """Runs side ``"a"`` / ``"b"``'s check (if any) on its arguments."""
        check = self.check_a if side == "a" else self.check_b
        if check is None:
            return
        if calls_with(check, 3):
            check(inputs, baselines, extra)
        else:
            check(inputs, baselines)

    def default_baselines_a(self, inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        if self.reference_a is not None:
            return as_tuple(self.reference_a(inputs, extra))
        return tuple(torch.zeros_like(x) for x in inputs)

    def default_baselines_b(self, inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Tuple[Tensor, ...]:
        if self.reference_b is not None:
            return as_tuple(self.reference_b(inputs, extra))
        return tuple(torch.zeros_like(x) for x in inputs)

    def check_layers(self, layers: Tuple[nn.Module, nn.Module]) -> None:
        """Refuses a layer given for one side that lies in the other side's tower (see
        ``towers``; a Siamese encoder has none)."""
        for index, (layer, (own, other)) in enumerate(((layers[0], self._towers), (layers[1], self._towers[::-1]))):
            if other is None or (own is not None and _contains(own, layer)) or not _contains(other, layer):
                continue
            side, other_side = "ab"[index], "ba"[index]
            own_name = f" ({type(own).__name__})" if own is not None else ""
            raise ValueError(
                f"layer[{index}]: this {type(layer).__name__} is a module of side {other_side}'s encoder "
                f"({type(other).__name__}), not of side {side}'s{own_name}; pass the layers as (a layer of side a's "
                "encoder, a layer of side b's), e.g. (model.text_model.encoder.layers[k], "
                "model.vision_model.encoder.layers[k])"
            )

    def input_positions(self, side: str, inputs: Tuple[Tensor, ...], extra: Tuple[Any, ...]) -> Optional[Tensor]:
        """bool ``(batch, positions)`` of the positions of side ``"a"`` / ``"b"`` that carry
        input (not padding), or None when every position does (or it is unknown)."""
        mask_function = self.position_mask_a if side == "a" else self.position_mask_b
        if mask_function is None:
            return None
        mask = mask_function(inputs, extra)
        return None if mask is None else mask.to(torch.bool)


def _contains(tower: nn.Module, module: nn.Module) -> bool:
    return any(module is candidate for candidate in tower.modules())


def __getattr__(name: str) -> Any:
    # Old import paths (captum_bilinear.encoders.as_dual_encoder / is_supported_hf_model),
    # resolved on first use only: this module imports no adapter when it loads.
    if name == "as_dual_encoder":
        from captum_bilinear.adapters import as_dual_encoder

        return as_dual_encoder
    if name == "is_supported_hf_model":
        from captum_bilinear.adapters.hf import is_supported_hf_model

        return is_supported_hf_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
