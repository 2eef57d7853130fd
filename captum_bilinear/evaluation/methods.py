"""Every evaluated method behind one interface: a caption-image pair in, its explanation
as :class:`~captum_bilinear.terms.InteractionTerms` out.

Interaction methods give their terms (``attribute_terms`` where the method has it, else
the cross block of ``attribute`` with ``has_intercept`` / ``has_first_order`` False).
First-order methods (Captum's LayerIntegratedGradients and LayerGradCam of the
conditioned similarity) are terms too: their per-position values in ``first_a`` /
``first_b``, a zero ``cross`` block, ``has_intercept`` False; their maps are read from the
first-order values (:attr:`EvaluationMethod.order` is 1), the same for every span and box.

The gradient methods (BII, InteractionCAM, ITSM-H, LayerIntegratedGradients) attribute
at the run's layer (``--layer``); ITSM-O at the output; InteractionLIME, FIxLIP and
LayerGradCam perturb / read the inputs (the embeddings layers, the patch embedding).
"""

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from captum_bilinear._utils.step_limit import check_step_limit
from captum_bilinear.registry import METHODS
from captum_bilinear.terms import InteractionTerms

StepCount = Union[int, str]


@dataclass
class PairInputs:
    """One caption-image pair (batch 1) with its references and players."""

    input_ids: Tensor
    attention_mask: Tensor
    pixel_values: Tensor
    text_reference: Tensor
    image_reference: Tensor
    players_a: Tensor  #: caption positions that are players (content tokens)
    #: the image side's additional forward arguments: NaFlex ``(pixel_attention_mask, spatial_shapes)``
    image_extra: Optional[Tuple[Tensor, ...]] = None

    @property
    def inputs(self) -> Tuple[Tensor, Tensor]:
        return self.input_ids, self.pixel_values

    @property
    def extra(self) -> Tuple[Tuple[Tensor], Optional[Tuple[Tensor, ...]]]:
        return (self.attention_mask,), self.image_extra


@dataclass
class RunSettings:
    """What a method's randomness and quadrature depend on for one pair."""

    seed: int  #: per example: from the run's seed and the example's index, never the process
    n_steps: StepCount  #: BII's nodes: an int or ``"auto"``
    tolerance: Optional[float] = None  #: BII's relative tolerance with ``n_steps="auto"``
    lig_n_steps: int = 50  #: Captum's LayerIntegratedGradients needs an int


@dataclass(frozen=True)
class EvaluationMethod:
    """One evaluated method.

    Attributes:
        name: the name ``results.json`` uses.
        short: the command line's short name.
        order: 2 for interaction methods (maps from ``cross``), 1 for first-order ones.
        layer: ``"run"`` (the run's ``--layer``), ``"inputs"`` (embeddings / patch
            embedding) or ``"output"``.
        text_side: whether it has a caption-side map (LayerGradCam has none).
        explain: ``explain(bundle, pair, settings) -> InteractionTerms``.
        span_box: ``span_box(bundle, pair, settings, span, box_weights) -> float``, one
            span's attribution with one box computed without the whole matrix (a hard
            negative needs no more), or None: from :attr:`explain`'s matrix.
        explain_objects: ``explain_objects(bundle, pair, settings, spans, negative_spans,
            box_weights) -> (terms, ObjectMaps)``: what the object metrics read, computed
            without the whole matrix (BII: spans and boxes as groups), or None.
    """

    name: str
    short: str
    order: int
    layer: str
    text_side: bool
    explain: Callable[[Any, PairInputs, RunSettings], InteractionTerms]
    span_box: Optional[Callable[[Any, PairInputs, RunSettings, Tuple[int, int], Tensor], float]] = None
    explain_objects: Optional[Callable[..., Tuple[InteractionTerms, Any]]] = None


def as_interaction_terms(result: Any, method: str) -> InteractionTerms:
    """A method's result as :class:`InteractionTerms`: InteractionTerms as they are; any
    object with ``intercept``, ``first_a``, ``first_b``, ``cross`` (a method's own terms
    type); or a ``(batch, S, P)`` tensor (``attribute``), optionally with its delta.

    Example:
        >>> terms = as_interaction_terms(torch.ones(1, 2, 3), "InteractionCAM")
        >>> terms.has_intercept, terms.first_a.shape, float(terms.total()[0])
        (False, torch.Size([1, 2]), 6.0)
    """
    if isinstance(result, InteractionTerms):
        return result.detach()
    delta = None
    if isinstance(result, tuple):
        result, delta = result
    if isinstance(result, Tensor):
        cross = result.detach()
        batch, positions_a, positions_b = cross.shape
        zeros = cross.new_zeros
        return InteractionTerms(zeros(batch), zeros(batch, positions_a), zeros(batch, positions_b), cross,
                                method=method, delta=None if delta is None else delta.detach(),
                                has_intercept=False, has_first_order=False)
    return InteractionTerms(
        result.intercept.detach(), result.first_a.detach(), result.first_b.detach(), result.cross.detach(),
        intra_a=getattr(result, "intra_a", None), intra_b=getattr(result, "intra_b", None), method=method,
        settings={"p": float(getattr(result, "p", 0.5))},
    ).detach()


def check_steps(n_steps: Any, tolerance: Any) -> None:
    """``n_steps`` a positive int or ``"auto"`` (then ``tolerance`` a positive number, and
    BilinearIntegratedInteractions must support it), raised before any work."""
    if n_steps == "auto":
        from captum_bilinear._utils.adaptive_quadrature import check_tolerance

        if tolerance is not None:
            check_tolerance(tolerance)
        return
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps: expected a positive int or 'auto', got {n_steps!r}")
    check_step_limit(n_steps)  # also Captum's LayerIntegratedGradients' nodes, which it does not limit


def _bii(bundle: Any, pair: PairInputs, settings: RunSettings) -> InteractionTerms:
    spec = METHODS["bii"]
    method = spec.make(bundle.model, bundle.layers)
    options: Dict[str, Any] = {"n_steps": settings.n_steps}
    if settings.n_steps == "auto" and settings.tolerance is not None:
        options["tolerance"] = settings.tolerance
    terms = method.attribute_terms(pair.inputs, additional_forward_args=pair.extra, **options)
    return as_interaction_terms(terms, spec.name)


def _bii_span_box(bundle: Any, pair: PairInputs, settings: RunSettings, span: Tuple[int, int],
                  box_weights: Tensor) -> float:
    """BII of one caption span with one image box, each one group (two passes per node)."""
    from captum_bilinear.selection import span_mask

    method = METHODS["bii"].make(bundle.model, bundle.layers)
    options: Dict[str, Any] = {"n_steps": settings.n_steps}
    if settings.n_steps == "auto" and settings.tolerance is not None:
        options["tolerance"] = settings.tolerance
    mask = (span_mask(pair.input_ids.shape[1], [span], rest=False), box_weights)
    return float(method.attribute(pair.inputs, additional_forward_args=pair.extra, feature_mask=mask, **options).sum())


def span_atoms(positions: int, spans: Sequence[Tuple[int, int]]) -> Tuple[Tensor, List[List[int]]]:
    """The coarsest partition of ``positions`` in which every span is a union of groups:
    group ids per position (the positions in no span form the last group) and, per span,
    its groups.

    Example:
        >>> span_atoms(7, [(1, 4), (2, 3)])  # "large red circle" and its "red"
        (tensor([3, 0, 1, 2, 3, 3, 3]), [[0, 1, 2], [1]])
    """
    cuts = sorted({edge for span in spans for edge in span})
    atoms = [(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:]) if any(a <= lo and hi <= b for a, b in spans)]
    ids = torch.full((positions,), len(atoms), dtype=torch.long)
    for index, (lo, hi) in enumerate(atoms):
        ids[lo:hi] = index
    members = [[k for k, (lo, hi) in enumerate(atoms) if a <= lo and hi <= b] for a, b in spans]
    return ids, members


def _bii_objects(bundle: Any, pair: PairInputs, settings: RunSettings, spans: Sequence[Tuple[int, int]],
                 negative_spans: Sequence[Tuple[int, int]], box_weights: Tensor) -> Tuple[InteractionTerms, Any]:
    """BII of what the object metrics read: the objects' spans and the words the hard
    negatives replace as groups of tokens (:func:`span_atoms`: they cover the caption, so
    the convergence delta is kept) with every image position, and the objects' boxes as
    groups of patches with every token -- two calls whose passes per node follow the
    groups, not the positions."""
    from captum_bilinear.evaluation.scoring import ObjectMaps

    method = METHODS["bii"].make(bundle.model, bundle.layers)
    options: Dict[str, Any] = {"n_steps": settings.n_steps}
    if settings.n_steps == "auto" and settings.tolerance is not None:
        options["tolerance"] = settings.tolerance
    ids, members = span_atoms(pair.input_ids.shape[1], [*spans, *negative_spans])
    terms = method.attribute_terms(pair.inputs, additional_forward_args=pair.extra, feature_mask=(ids, None),
                                   first_order=False, **options)
    rows = terms.cross[0]
    summed = torch.stack([rows[groups].sum(0) for groups in members]) if members else rows[:0]
    columns = method.attribute(pair.inputs, additional_forward_args=pair.extra, feature_mask=(None, box_weights),
                               **options)[0]
    maps = ObjectMaps(summed[: len(spans)], columns, summed[len(spans):])
    return as_interaction_terms(terms, METHODS["bii"].name), maps


def _plain(short: str) -> Callable[[Any, PairInputs, RunSettings], InteractionTerms]:
    """The registry's method of ``short`` at the run's layers, with its own defaults."""

    def explain(bundle: Any, pair: PairInputs, settings: RunSettings) -> InteractionTerms:
        spec = METHODS[short]
        method = spec.make(bundle.model, bundle.layers)
        run = getattr(method, "attribute_terms", None) or method.attribute
        return as_interaction_terms(run(pair.inputs, additional_forward_args=pair.extra), spec.name)

    return explain


def _interaction_lime(bundle: Any, pair: PairInputs, settings: RunSettings) -> InteractionTerms:
    """InteractionLIME at the inputs, sized by the method itself (``n_samples=None``: the
    paper's 1000, raised to what identifies the surrogate of a long caption)."""
    spec = METHODS["ilime"]
    method = spec.make(bundle.model, bundle.input_layers)
    terms = method.attribute_terms(pair.inputs, additional_forward_args=pair.extra, random_state=settings.seed)
    return as_interaction_terms(terms, spec.name)


def _banzhaf(bundle: Any, pair: PairInputs, settings: RunSettings) -> InteractionTerms:
    """FIxLIP as its paper runs it: inputs masked (the embeddings layers), p = 0.5, the
    special positions (BOS, EOS, CLS) never masked, the budget sized by the method itself
    (``budget=None``: FIxLIP's 2^12, raised to what identifies the terms)."""
    spec = METHODS["fixlip"]
    method = spec.make(bundle.model, bundle.input_layers)
    terms = method.attribute_terms(pair.inputs, additional_forward_args=pair.extra, random_state=settings.seed,
                                   players=(pair.players_a, bundle.image_players))
    return as_interaction_terms(terms, spec.name)


def _first_order_terms(text: Tensor, image: Tensor, method: str, delta: Optional[Tensor] = None) -> InteractionTerms:
    return InteractionTerms(torch.zeros(1), text.detach()[None], image.detach()[None],
                            torch.zeros(1, text.shape[-1], image.shape[-1]), method=method, delta=delta,
                            has_intercept=False)


def _layer_integrated_gradients(bundle: Any, pair: PairInputs, settings: RunSettings) -> InteractionTerms:
    """Captum's LayerIntegratedGradients of each side's conditioned similarity, at the
    run's layer, summed over hidden dims; ``delta`` the larger relative convergence delta."""
    from captum.attr import LayerIntegratedGradients

    from captum_bilinear import ConditionedSimilarity

    image_side = ConditionedSimilarity(bundle.dual, pair.input_ids, side="b", fixed_additional_forward_args=pair.extra[0])
    image, image_delta = LayerIntegratedGradients(image_side, bundle.layers[1]).attribute(
        pair.pixel_values, baselines=pair.image_reference, additional_forward_args=pair.image_extra,
        n_steps=settings.lig_n_steps, return_convergence_delta=True)
    text_side = ConditionedSimilarity(bundle.dual, pair.pixel_values, side="a", fixed_additional_forward_args=pair.image_extra)
    text, text_delta = LayerIntegratedGradients(text_side, bundle.layers[0]).attribute(
        pair.input_ids, baselines=pair.text_reference, additional_forward_args=pair.extra[0],
        n_steps=settings.lig_n_steps, return_convergence_delta=True)
    image, text = image.sum(-1)[0], text.sum(-1)[0]
    relative = max(float(image_delta.abs().max()) / max(abs(float(image.sum() - image_delta.sum())), 1e-12),
                   float(text_delta.abs().max()) / max(abs(float(text.sum() - text_delta.sum())), 1e-12))
    return _first_order_terms(text, image, "LayerIntegratedGradients", torch.tensor([relative]))


def _layer_grad_cam(bundle: Any, pair: PairInputs, settings: RunSettings) -> InteractionTerms:
    """Captum's LayerGradCam needs a (batch, channels, height, width) layer: in a ViT that
    is the patch-embedding convolution. There is no such layer on the text side."""
    from captum.attr import LayerGradCam

    from captum_bilinear import ConditionedSimilarity

    image_side = ConditionedSimilarity(bundle.dual, pair.input_ids, side="b", fixed_additional_forward_args=pair.extra[0])
    cam = LayerGradCam(image_side, bundle.model.vision_model.embeddings.patch_embedding).attribute(pair.pixel_values)
    image = cam[0, 0].flatten().detach()
    if bundle.has_cls:
        image = torch.cat([torch.zeros(1, dtype=image.dtype, device=image.device), image])  # no CLS value
    return _first_order_terms(torch.zeros(pair.input_ids.shape[1], device=image.device), image, "LayerGradCam")


#: How the evaluation runs each method, in the order of its tables: an interaction
#: method's short name of :data:`~captum_bilinear.registry.METHODS` (its result name and
#: class come from there), or a first-order method's ``(name, short)``; then ``order``,
#: ``layer``, ``text_side`` and ``explain`` as in :class:`EvaluationMethod`.
_Explain = Callable[[Any, PairInputs, RunSettings], InteractionTerms]
_RUNS: Tuple[Tuple[Union[str, Tuple[str, str]], int, str, bool, _Explain], ...] = (
    ("bii", 2, "run", True, _bii),  # its hard negatives as one group per side: SPAN_BOX
    ("icam", 2, "run", True, _plain("icam")),
    ("ilime", 2, "inputs", True, _interaction_lime),
    ("itsm-o", 2, "output", True, _plain("itsm-o")),
    ("itsm", 2, "run", True, _plain("itsm")),
    ("fixlip", 2, "inputs", True, _banzhaf),
    (("LayerIntegratedGradients", "lig"), 1, "run", True, _layer_integrated_gradients),
    (("LayerGradCam", "gradcam"), 1, "inputs", False, _layer_grad_cam),
)


#: The methods whose hard negatives need one span-box value only, computed as groups.
SPAN_BOX = {"bii": _bii_span_box}
#: The methods whose object metrics are computed without the whole matrix.
OBJECT_MAPS = {"bii": _bii_objects}


def _evaluation_method(key: Union[str, Tuple[str, str]], order: int, layer: str, text_side: bool,
                       explain: _Explain) -> EvaluationMethod:
    name, short = (METHODS[key].name, key) if isinstance(key, str) else key
    return EvaluationMethod(name, short, order, layer, text_side, explain, SPAN_BOX.get(short), OBJECT_MAPS.get(short))


#: The evaluated methods, by the name ``results.json`` uses: the interaction methods of
#: :data:`~captum_bilinear.registry.METHODS` under their registry names, then Captum's
#: first-order LayerIntegratedGradients and LayerGradCam.
EVALUATION_METHODS: Dict[str, EvaluationMethod] = {
    method.name: method for method in (_evaluation_method(*run) for run in _RUNS)
}

#: The methods the per-layer table varies (they take the run's layer).
GRADIENT_METHODS = [method.name for method in EVALUATION_METHODS.values() if method.layer == "run"]


def resolve_methods(names: Optional[Sequence[str]]) -> List[str]:
    """The evaluation names of ``names``: short names as ``explain --method`` takes them
    (:data:`captum_bilinear.registry.METHODS`, plus ``lig`` and ``gradcam``) or the full
    names of ``results.json``, case-insensitive; ``None``: every method.

    Example:
        >>> resolve_methods(["bii", "ITSM-H", "lig"])
        ['BilinearIntegratedInteractions', 'ITSM-H', 'LayerIntegratedGradients']
    """
    if names is None:
        return list(EVALUATION_METHODS)
    if isinstance(names, str):
        names = [names]
    lookup = {}
    for method in EVALUATION_METHODS.values():
        lookup[method.short] = lookup[method.name.lower()] = method.name
    resolved, unknown = [], []
    for name in names:
        key = str(name).lower()
        if key not in lookup:
            unknown.append(name)
        elif lookup[key] not in resolved:
            resolved.append(lookup[key])
    if unknown:
        known = ", ".join(f"{m.short} ({m.name})" for m in EVALUATION_METHODS.values())
        raise ValueError(f"methods: unknown {unknown}; expected some of {known}")
    if not resolved:
        raise ValueError("methods: expected at least one method")
    return resolved


def timed_explanation(method: EvaluationMethod, bundle: Any, pair: PairInputs,
                      settings: RunSettings) -> Tuple[InteractionTerms, float]:
    """``(terms on the CPU, seconds)`` of one method on one pair."""
    start = time.perf_counter()
    terms = method.explain(bundle, pair, settings)
    return terms.to("cpu"), time.perf_counter() - start


def unsupported_methods(bundle: Any) -> Dict[str, str]:
    """The evaluated methods that cannot explain ``bundle``'s model, with the reason:
    ITSM-O / ITSM-H need a per-patch output head (SigLIP's and SigLIP-2's image towers
    pool by attention and have none); LayerGradCam needs a ``(channels, height, width)``
    layer, which a ViT has only in a convolutional patch embedding (SigLIP-2 embeds its
    flattened NaFlex patches with a linear layer).

    Example:
        >>> from captum_bilinear.evaluation.bundle import load_bundle
        >>> unsupported_methods(load_bundle())
        {}
    """
    reasons: Dict[str, str] = {}
    if getattr(bundle.dual, "token_head_b", None) is None:
        for short in ("itsm-o", "itsm"):
            reasons[METHODS[short].name] = ("the image tower pools by attention and has no per-patch output head, "
                                            "which ITSM projects every patch with")
    patch_embedding = getattr(getattr(bundle.model.vision_model, "embeddings", None), "patch_embedding", None)
    if not isinstance(patch_embedding, torch.nn.Conv2d):
        reasons["LayerGradCam"] = ("its patch embedding is not a convolution: there is no (channels, height, width) "
                                   "layer for Grad-CAM")
    return reasons
