"""Explaining one image-caption pair end to end: load a model, prepare the inputs, run
an interaction method and a first-order Captum method, and draw the paper's Figure 1.

This is what ``captum-bilinear explain`` runs: the pair's pipeline. Its steps live where
they belong and are usable on their own -- loading models and their layers in
:mod:`captum_bilinear.loading`, reading images in :mod:`captum_bilinear.images`, caption
encoding and noun-phrase spans in :mod:`captum_bilinear.selection`, the methods by name in
:mod:`captum_bilinear.registry`, the first-order map in :mod:`captum_bilinear.first_order`
-- and stay importable from here under their old names. Errors and warnings name the
Python argument they are about (``image_path: no such file``); the command line shows
them with its flags. Every check of the input runs before any attribution does.
"""

import json
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from torch import Tensor

import torch

from captum_bilinear._utils.adaptive_quadrature import StepCount, check_tolerance
from captum_bilinear._utils.model_state import leaves_inference_mode
from captum_bilinear._utils.checks import check_box_coordinates, check_flag
from captum_bilinear._utils.step_limit import check_step_limit
from captum_bilinear.first_order import first_order_map
from captum_bilinear.images import FITS, FittedImage, fit_image, image_to_patches, is_naflex_processor, read_image
from captum_bilinear.loading import EMBEDDINGS, Layer, check_layer, layer_pair, load_model
from captum_bilinear.registry import MethodSpec, method_spec, run_method_terms
from captum_bilinear.selection import (
    box_weights,
    caption_words,
    encode_caption,
    noun_phrase_spans,
    patch_grid,
    span_mask,
    span_label,
    token_labels,
    token_span,
)
from captum_bilinear.terms import InteractionTerms

# Moved to their own modules; importable from here under their old names (explicit re-exports).
from captum_bilinear.loading import LoadedModel as LoadedModel
from captum_bilinear.registry import make_method as make_method
from captum_bilinear.registry import run_method as run_method
from captum_bilinear.selection import STOP_WORDS as STOP_WORDS
from captum_bilinear.selection import unknown_words as unknown_words

#: At most this many noun phrases get a panel when no span is given (the figure's size
#: stays bounded for long captions).
MAX_SPANS = 6


#: Where the methods that compare the encoders' last hidden states (ITSM-O) read.
OUTPUTS = "the encoders' last hidden states"
#: The first-order view's title in the figure and the page.
FIRST_ORDER_TITLE = "Captum LayerIntegratedGradients"
#: What :meth:`Explanation.save` writes (a reader refuses other versions).
SAVED_FORMAT, SAVED_FORMAT_VERSION = "captum-bilinear Explanation", 1


@dataclass
class Explanation:
    """The result of :func:`explain_pair`: the data of one pair's explanation. The figure
    (:attr:`figure`) and the interactive page (:meth:`page`) are two renderings of it;
    :meth:`save` / :meth:`load` keep it."""

    #: ``(positions_a, positions_b)`` of the first method; None when only what the figure
    #: draws was computed (``full=False``: :attr:`span_rows` and :attr:`box_column`)
    interactions: Optional[Tensor]
    tokens: List[str]
    spans: List[Tuple[int, int]]
    labels: List[str]  #: each span's words as the caption writes them
    box: Optional[Tuple[float, float, float, float]]  #: in the model's image
    image: np.ndarray  #: the image as the model saw it
    first_order: Tensor  #: ``(grid_h, grid_w)``
    method: MethodSpec  #: the method that computed ``interactions`` (the first one run)
    layer: Layer  #: the layer pair it attributed: an encoder layer index or ``"embeddings"``
    fitted: FittedImage  #: how the image was fitted to the model
    #: every method's terms, in the order they ran (batch of one; ``method`` the result name)
    terms: List[InteractionTerms] = field(default_factory=list)
    caption: str = ""
    model_name: str = ""
    grid: Tuple[int, int] = (0, 0)  #: the image side's patch grid
    has_cls: bool = True
    #: ``(len(spans), positions_b)``: each span's interactions with every image position
    #: (the first method's; computed as groups when ``full=False``)
    span_rows: Optional[Tensor] = None
    box_column: Optional[Tensor] = None  #: ``(positions_a,)``: the box's interactions with every token

    @property
    def full(self) -> bool:
        """Whether every token x patch interaction is kept (what the page and :meth:`save` need)."""
        return self.interactions is not None

    @property
    def methods(self) -> List[MethodSpec]:
        """The methods of every :attr:`terms`, in order."""
        return [method_spec(terms.method) for terms in self.terms] if self.terms else [self.method]

    @property
    def where(self) -> str:
        if self.method.reads_outputs:
            return OUTPUTS
        return "the embeddings layers (the inputs)" if self.layer == EMBEDDINGS else f"encoder layer {self.layer}"

    def title(self, method: Optional[MethodSpec] = None) -> str:
        caption = self.caption if len(self.caption) <= 90 else self.caption[:87] + "..."
        return f"{(method or self.method).name} on the {self.model_name}, {self.where}: \"{caption}\""

    @cached_property
    def figure(self) -> Any:
        """The paper's Figure 1 of the first method (drawn on first use): each span's map
        on the image, the box's colours on the caption, the first-order map beside them."""
        from captum_bilinear.visualization import plot_interaction_figure

        return plot_interaction_figure(
            self.image, self.tokens, self.interactions, self.spans, box=self.box, first_order_map=self.first_order,
            first_order_title=FIRST_ORDER_TITLE, grid_size=self.grid, has_cls=self.has_cls, title=self.title(),
            units=self.method.units, first_order_units="similarity", span_labels=self.labels,
            span_rows=None if self.full else self.span_rows, box_column=None if self.full else self.box_column,
        )

    def page(self, explorer_id: Optional[str] = None) -> Any:
        """The interactive page of every method run and the first-order map
        (:func:`~captum_bilinear.page.interaction_explorer`): ``.save("page.html")``."""
        from captum_bilinear.page import interaction_explorer

        interactions = self._every_interaction("the page")
        runs = self.terms or [InteractionTerms(
            interactions.new_zeros(1), interactions.new_zeros(1, len(self.tokens)),
            interactions.new_zeros(1, interactions.shape[1]), interactions[None], method=self.method.name)]
        for terms in runs:
            if tuple(terms.cross.shape[1:]) != (len(self.tokens), interactions.shape[1]):
                raise ValueError(f"terms: the page needs every token's row of A; {terms.method} holds "
                                 f"{tuple(terms.cross.shape[1:])} (grouped spans?)")
        units = {spec.name: spec.units for spec in self.methods}
        if len({tuple(terms.layers) for terms in runs}) == 1:
            names = f"{', '.join(terms.method for terms in runs)} on the {self.model_name}, {self.where}"
        else:  # the masking methods ran at the inputs, the others at the requested layer
            names = "; ".join(f"{terms.method} at {' / '.join(terms.layers)}" for terms in runs)
            names = f"{names} (the {self.model_name})"
        return interaction_explorer(
            runs, self.image, self.tokens, grid_size=self.grid, has_cls=self.has_cls,
            first_order_map=self.first_order, first_order_title=FIRST_ORDER_TITLE, first_order_units="similarity",
            spans=self.spans, box=self.box, units=units, explorer_id=explorer_id,
            title=f"{names}: \"{self.caption}\"",
        )

    def _every_interaction(self, what: str) -> Tensor:
        """``interactions``, which only a ``full`` explanation holds."""
        if not self.full or self.interactions is None:
            raise ValueError(f"full: {what} holds every token x patch interaction, but this explanation computed "
                             "only what its figure draws (the spans and the box as groups); run "
                             "explain_pair(..., full=True)")
        return self.interactions

    def _repr_html_(self) -> str:
        return self.page()._repr_html_()

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the explanation to the directory ``path``: each method's terms under
        ``terms/<short name>/`` (:meth:`InteractionTerms.save`), the first-order map and
        the model's input image in ``explanation.safetensors``, the rest (caption, spans,
        box, layer, model, how the image was fitted, a format version) in
        ``explanation.json``. :meth:`load` reads it back."""
        from safetensors.torch import save_file

        self._every_interaction("a saved explanation")
        os.makedirs(path, exist_ok=True)
        shorts = []
        for terms in self.terms:
            short = method_spec(terms.method).short
            terms.save(os.path.join(path, "terms", short))
            shorts.append(short)
        fitted = self.fitted
        import torch

        save_file({"first_order": self.first_order.detach().cpu().contiguous(),
                   "pixel_values": fitted.pixel_values.detach().cpu().contiguous(),
                   "image": torch.tensor(np.asarray(self.image, dtype=np.uint8))},
                  os.path.join(path, "explanation.safetensors"))
        metadata = {
            "format": SAVED_FORMAT, "format_version": SAVED_FORMAT_VERSION, "caption": self.caption,
            "tokens": self.tokens, "spans": [list(span) for span in self.spans], "labels": self.labels,
            "box": None if self.box is None else [float(v) for v in self.box], "method": self.method.short,
            "methods": shorts, "layer": self.layer, "model_name": self.model_name, "grid": list(self.grid),
            "has_cls": self.has_cls, "fitted": {
                "scale": list(fitted.scale), "offset": list(fitted.offset), "original_size": list(fitted.original_size),
                "fit": fitted.fit, "description": fitted.description},
        }
        with open(os.path.join(path, "explanation.json"), "w", encoding="utf-8") as handle:
            json.dump(metadata, handle, indent=1)

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "Explanation":
        """The explanation :meth:`save` wrote to ``path``.

        Raises:
            ValueError: naming ``path`` when it holds no saved explanation or one of
                another format version.
        """
        from safetensors.torch import load_file

        metadata_file = os.path.join(path, "explanation.json")
        if not os.path.isfile(metadata_file):
            raise ValueError(f"path: {os.fspath(path)} has no explanation.json; expected a directory written by "
                             "Explanation.save (captum-bilinear explain --save DIR)")
        with open(metadata_file, encoding="utf-8") as handle:
            metadata = json.load(handle)
        if metadata.get("format") != SAVED_FORMAT or metadata.get("format_version") != SAVED_FORMAT_VERSION:
            raise ValueError(f"path: {metadata_file} is {metadata.get('format')!r} version "
                             f"{metadata.get('format_version')!r}; this captum-bilinear reads {SAVED_FORMAT!r} "
                             f"version {SAVED_FORMAT_VERSION} only")
        tensors = load_file(os.path.join(path, "explanation.safetensors"))
        terms = [InteractionTerms.load(os.path.join(path, "terms", short)) for short in metadata["methods"]]
        saved = metadata["fitted"]
        image = tensors["image"].numpy()
        fitted = FittedImage(tensors["pixel_values"], image, tuple(saved["scale"]), tuple(saved["offset"]),
                             tuple(saved["original_size"]), saved["fit"], saved["description"])
        spec = method_spec(metadata["method"])
        interactions = terms[0].cross[0] if terms else None
        return cls(interactions, metadata["tokens"], [tuple(span) for span in metadata["spans"]], metadata["labels"],
                   None if metadata["box"] is None else tuple(metadata["box"]), image, tensors["first_order"], spec,
                   metadata["layer"], fitted, terms, metadata["caption"], metadata["model_name"],
                   tuple(metadata["grid"]), metadata["has_cls"])


class DrawnInteractions(NamedTuple):
    """What the figure draws of BII, computed as groups (:func:`drawn_interactions`)."""

    span_rows: Tensor  #: ``(len(spans), positions_b)``
    box_column: Optional[Tensor]  #: ``(positions_a,)``, None without a box
    first_order: Tensor  #: ``(positions_b,)``: integrated gradients of the caption-conditioned similarity
    summary: str  #: one line on the quadrature: nodes, estimated error, completeness delta


def quadrature_summary(terms: InteractionTerms) -> str:
    """One line on how BII's terms were integrated: nodes per side, the estimated relative
    error (``n_steps="auto"``) and the convergence delta relative to the score the
    interactions decompose.

    Example:
        >>> import torch
        >>> terms = InteractionTerms(torch.zeros(1), torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2, 2),
        ...                          n_steps=torch.tensor([33]), error=torch.tensor([2e-3]),
        ...                          delta=torch.tensor([1e-3]), settings={"nodes_evaluated": [88]})
        >>> quadrature_summary(terms)
        'quadrature: 33 nodes per side (88 evaluated), estimated relative error 0.002, completeness delta +0.001 (2.5e-04 of the 3.999 the interactions add up to)'
    """
    parts = []
    if terms.n_steps is not None:
        evaluated = terms.settings.get("nodes_evaluated")
        parts.append(f"{int(terms.n_steps[0])} nodes per side" + (f" ({evaluated[0]} evaluated)" if evaluated else ""))
    if terms.error is not None and not math.isnan(float(terms.error[0])):
        parts.append(f"estimated relative error {float(terms.error[0]):.2g}")
    if terms.delta is not None:
        delta = float(terms.delta[0])
        decomposed = float(terms.cross[0].sum()) - delta
        parts.append(f"completeness delta {delta:+.2g} ({abs(delta) / max(abs(decomposed), 1e-12):.1e} of the "
                     f"{decomposed:.4g} the interactions add up to)")
    return "quadrature: " + ", ".join(parts)


def drawn_interactions(
    bii: Any, inputs: Tuple[Tensor, Tensor], extra: Any, spans: Sequence[Tuple[int, int]],
    box: Optional[Sequence[float]], image_size: Tuple[int, int], grid: Tuple[int, int], n_steps: StepCount,
    tolerance: float, show_progress: bool,
) -> DrawnInteractions:
    """BII's share of the figure, as groups of positions: one call with the spans (and the
    rest of the caption) as the caption's groups -- the spans' image maps, and, since the
    groups cover the caption, the first-order map ``first_b + A.sum(0)``, the integrated
    gradients of the caption-conditioned similarity -- and, with a box, one call with the
    box as the image's group (its caption map). The passes per node follow the groups,
    not the tokens.

    Example:
        >>> from captum_bilinear import BilinearIntegratedInteractions
        >>> from captum_bilinear.zoo import generate_scene, load_demo_model, scene_inputs
        >>> model, tokenizer, processor = load_demo_model()
        >>> batch = scene_inputs(generate_scene(0), tokenizer, processor)
        >>> bii = BilinearIntegratedInteractions(model, (model.text_model.embeddings, model.vision_model.embeddings))
        >>> drawn = drawn_interactions(bii, (batch["input_ids"], batch["pixel_values"]),
        ...                            ((batch["attention_mask"],), None), [(2, 4)], (0, 0, 16, 16), (64, 64), (8, 8),
        ...                            n_steps=8, tolerance=1e-2, show_progress=False)
        >>> drawn.span_rows.shape, drawn.box_column.shape, drawn.first_order.shape
        (torch.Size([1, 65]), torch.Size([24]), torch.Size([65]))
    """
    options = dict(additional_forward_args=extra, n_steps=n_steps, tolerance=tolerance, show_progress=show_progress)
    positions_a = inputs[0].shape[1]
    span_terms = bii.attribute_terms(inputs, feature_mask=(span_mask(positions_a, spans), None), **options)
    cross = span_terms.cross[0].detach().cpu()
    first_order = span_terms.first_b[0].detach().cpu() + cross.sum(0)
    summary = quadrature_summary(span_terms)
    box_column = None
    if box is not None:
        has_cls = cross.shape[1] == grid[0] * grid[1] + 1
        box_terms = bii.attribute_terms(inputs, feature_mask=(None, box_weights(box, image_size, grid, has_cls)),
                                        **options)
        box_column = box_terms.cross[0, :, 0].detach().cpu()
    return DrawnInteractions(cross[: len(spans)], box_column, first_order, summary)


def _check_methods(method: Any) -> List[MethodSpec]:
    """One method's name or several (each once, in order)."""
    names = [method] if isinstance(method, str) or not isinstance(method, Sequence) else list(method)
    if not names:
        raise ValueError("method: expected a method's short name or a list of them, got an empty list")
    specs: List[MethodSpec] = []
    for name in names:
        spec = method_spec(name)
        if spec not in specs:
            specs.append(spec)
    return specs


def _check_arguments(method: Any, n_steps: Any, tolerance: Any, layer: Any, fit: Any, box: Any) -> List[MethodSpec]:
    specs = _check_methods(method)
    if n_steps != "auto" and (isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1):
        raise ValueError(f"n_steps: expected a positive int or 'auto', got {n_steps!r}")
    if n_steps != "auto":
        check_step_limit(int(n_steps))  # Captum's LIG of the first-order map has no limit of its own
    check_tolerance(tolerance)
    if layer is not None and layer != EMBEDDINGS and (isinstance(layer, bool) or not isinstance(layer, (int, np.integer))):
        raise ValueError(f"layer: expected 'embeddings' or an int (an encoder layer index), got {layer!r}")
    if fit not in FITS:
        raise ValueError(f"fit: expected one of {FITS}, got {fit!r}")
    if box is not None and (isinstance(box, (str, bytes)) or not isinstance(box, Sequence) or len(box) != 4):
        raise ValueError(f"box: expected (x0, y0, x1, y1), got {box!r}")
    if box is not None:  # what needs no image (its bounds are checked on the image)
        check_box_coordinates(box, "box")
    return specs


def _check_box_covers_a_patch(model_box: Sequence[float], box: Sequence[float], fitted: FittedImage,
                              grid: Tuple[int, int]) -> None:
    """A box's caption map weighs patches by the share of their pixels in the box; a box
    that holds no patch centre is almost surely not what the user meant."""
    width, height = fitted.size
    x0, y0, x1, y1 = model_box
    centres_x = (np.arange(grid[1]) + 0.5) * width / grid[1]
    centres_y = (np.arange(grid[0]) + 0.5) * height / grid[0]
    if not (((centres_x >= x0) & (centres_x < x1)).any() and ((centres_y >= y0) & (centres_y < y1)).any()):
        shown = tuple(float(v) for v in box)
        raise ValueError(f"box: {shown} contains no patch centre of the {grid[1]}x{grid[0]} grid "
                         f"({width // grid[1]}x{height // grid[0]}-pixel patches of the model's {width}x{height} "
                         f"image, {fitted.description}); expected a box around at least one patch's centre")


def _spans(tokenizer: Any, caption: str, tokens: List[str], span: Optional[str],
           log: Callable[[str], None]) -> List[Tuple[int, int]]:
    if span is not None:
        try:
            found = token_span(tokenizer, caption, span)
        except ValueError as error:
            raise ValueError(f"span: {str(error).split(': ', 1)[-1]}") from error
        if found[1] > len(tokens) - 1:  # the last position of a cut caption is its end token
            raise ValueError(f"span: {span!r} lies in the part of the caption the model does not read (it reads "
                             f"{len(tokens)} tokens, up to {' '.join(tokens[-4:-1])!r}); choose words before it or "
                             "shorten the caption")
        return [found]
    spans = noun_phrase_spans(tokens, caption_words(tokenizer, caption, len(tokens))) or [(1, max(2, len(tokens) - 1))]
    if len(spans) > MAX_SPANS:
        log(f"span: showing the first {MAX_SPANS} of {len(spans)} noun phrases; span='words' picks one")
    return spans[:MAX_SPANS]



@leaves_inference_mode  # under a caller's torch.inference_mode() the model it loads could not be differentiated
def explain_pair(
    image_path: str,
    caption: str,
    span: Optional[str] = None,
    box: Optional[Sequence[float]] = None,
    method: Union[str, Sequence[str]] = "bii",
    model: Optional[str] = None,
    n_steps: StepCount = "auto",
    tolerance: float = 1e-2,
    layer: Optional[Layer] = None,
    fit: str = "crop",
    show_progress: bool = True,
    log: Callable[[str], None] = lambda message: None,
    full: bool = False,
) -> Explanation:
    """Explains one image-caption pair: every token x patch interaction of each method,
    and Captum's first-order map; the result draws the paper's Figure 1
    (:attr:`Explanation.figure`) and the interactive page (:meth:`Explanation.page`).

    Args:
        image_path: an image file.
        caption: the caption.
        span: a substring of the caption to map onto the image (default: every noun
            phrase, at most :data:`MAX_SPANS`).
        box: ``(x0, y0, x1, y1)`` in the original image's pixels to map onto the caption;
            it must hold at least one patch centre of what the model sees.
        method: a short name of :data:`captum_bilinear.registry.METHODS` (``bii``,
            ``icam``, ``ilime``, ``itsm``, ``itsm-o``, ``fixlip``), or a list of them: the
            figure shows the first, the page every one.
        model: a HF CLIP / SigLIP directory or hub id (default: the bundled demo model).
        n_steps: BII's quadrature nodes (at most 4096; also the first-order map's), or
            ``"auto"``: as many as ``tolerance`` needs.
        tolerance: relative error of ``n_steps="auto"`` (of the computed maps, and of
            completeness; default 1e-2, a figure's accuracy: docs, Performance).
        layer: the layer pair the gradient methods attribute: an encoder layer index or
            ``"embeddings"`` (default: the model's default). The masking methods
            (InteractionLIME, FIxLIP) mask the inputs, i.e. run at the embeddings.
        fit: how an image that is not square is fitted: ``"crop"`` as the model's
            processor does, or ``"pad"`` to a square first (:func:`~captum_bilinear.images.fit_image`).
        show_progress: progress bars.
        log: receives one-line messages on what is done (how the image was fitted, ...).
        full: compute every token x patch interaction (what the page and
            :meth:`Explanation.save` need). By default BII computes what the figure draws:
            the spans (and the rest of the caption) as groups of tokens, the box as a group
            of patches, and the first-order map from the same passes; the other methods
            compute their whole matrix either way.

    Returns:
        An :class:`Explanation` (with ``full``, the full matrix of every method in ``terms``).

    Raises:
        ValueError: naming the argument (``image_path``, ``caption``, ``span``, ``box``,
            ``method``, ``model``, ``n_steps``, ``layer``, ``fit``), before any attribution.

    Warns:
        UserWarning: the caption is cut to the model's length, has words outside the
            bundled model's vocabulary, or the image is cropped.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> from captum_bilinear.zoo import generate_scene
        >>> scene = generate_scene(3, mode="full")
        >>> path = os.path.join(tempfile.mkdtemp(), "scene.png"); Image.fromarray(scene.image).save(path)
        >>> result = explain_pair(path, scene.caption, n_steps=8, show_progress=False)
        >>> result.span_rows.shape  # each noun phrase with CLS + 8 x 8 patches of the demo model
        torch.Size([4, 65])
        >>> result = explain_pair(path, scene.caption, n_steps=8, show_progress=False, full=True)
        >>> result.interactions.shape[1]
        65
        >>> result.page().save(os.path.join(os.path.dirname(path), "page.html"))  # the interactive page
    """
    specs = _check_arguments(method, n_steps, tolerance, layer, fit, box)
    spec = specs[0]
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError("caption: the caption is empty")
    if span is not None and (not isinstance(span, str) or not span.strip()):
        raise ValueError(f"span: expected a non-empty string, got {span!r}")
    if span is not None and span.lower() not in caption.lower():
        raise ValueError(f"span: {span!r} is not in the caption {caption!r}")
    image = read_image(image_path)
    log(f"loading {'the bundled demo model' if model is None else model}")
    loaded = load_model(model)
    requested = check_layer(loaded.default_layer if layer is None else layer, loaded.model)
    chosen = EMBEDDINGS if spec.masks_inputs else requested
    for masking in (item for item in specs if item.masks_inputs):
        if layer is not None and layer != EMBEDDINGS:
            log(f"layer: {masking.name} masks the inputs (the embeddings layers); layer={layer} is not used for it")
    fitted = fit_image(image, loaded.image_processor, fit)
    if fitted.cuts_off:
        warnings.warn(f"image_path: {fitted.description}", UserWarning, stacklevel=2)
    else:
        log(f"image: {fitted.description}")
    patch = loaded.model.config.vision_config.patch_size
    grid = (fitted.pixel_values.shape[-2] // patch, fitted.pixel_values.shape[-1] // patch)
    model_box = None
    if box is not None:
        model_box = fitted.map_box(box, "box")
        _check_box_covers_a_patch(model_box, box, fitted, grid)
    encoded = encode_caption(loaded.tokenizer, caption, loaded.model.config.text_config.max_position_embeddings,
                             loaded.vocabulary)
    input_ids = encoded["input_ids"]
    tokens = token_labels(loaded.tokenizer, input_ids[0])
    spans = _spans(loaded.tokenizer, caption, tokens, span, log)
    labels = [span_label(loaded.tokenizer, caption, item, tokens) for item in spans]

    pixel_values, image_extra = fitted.pixel_values, None
    if is_naflex_processor(loaded.image_processor):  # SigLIP-2: patches, (pixel_attention_mask, spatial_shapes)
        pixel_values, pixel_attention_mask, spatial_shapes = image_to_patches(fitted.pixel_values, patch)
        image_extra = (pixel_attention_mask, spatial_shapes)
    inputs = (input_ids, pixel_values)
    extra = ((encoded["attention_mask"],), image_extra)
    check_flag(full, "full")
    runs: List[InteractionTerms] = []
    drawn: Optional[DrawnInteractions] = None
    for item in specs if full else specs[:1]:  # the figure draws the first method; the page shows every one
        item_layer = EMBEDDINGS if item.masks_inputs else requested
        item_where = "the embeddings layers (the inputs)" if item_layer == EMBEDDINGS else f"encoder layer {item_layer}"
        if item.reads_outputs:  # ITSM-O: the title named the layer it was given, which it does not read
            if layer is not None:
                log(f"layer: {item.name} compares the encoders' last hidden states; layer={layer} is not used for it")
            item_where = OUTPUTS
        log(f"attributing with {item.name} at {item_where}")
        method_object = item.make(loaded.model, layer_pair(loaded.model, item_layer))
        if item.short == "bii" and not full:  # what the figure draws, as groups
            drawn = drawn_interactions(method_object, inputs, extra, spans, model_box, fitted.size[::-1], grid,
                                       n_steps, tolerance, show_progress)
            log(drawn.summary)
            continue
        terms = run_method_terms(method_object, inputs, extra, n_steps, show_progress, tolerance)
        if item.short == "bii":
            log(quadrature_summary(terms))
        # named as the registry names it (ITSM-H / ITSM-O share a class), with what the page needs
        runs.append(replace(terms.detach().to("cpu"), method=item.name, tokens=[tokens], grid=grid,
                            image=_as_tensor_image(fitted.display)))
    if runs:
        positions_b = runs[0].cross.shape[2]
    else:
        assert drawn is not None  # no method ran whole: the one method drew its figure's groups
        positions_b = drawn.span_rows.shape[1]
    has_cls = positions_b == grid[0] * grid[1] + 1
    if drawn is not None and specs[0].short == "bii":
        first = patch_grid(drawn.first_order, grid, has_cls)
        log("first-order map: integrated gradients of the caption-conditioned similarity at the image layer, "
            "from BII's passes (what Captum's LayerIntegratedGradients computes)")
    else:
        log("first-order map: integrated gradients of the caption-conditioned similarity at the image layer "
            "(what Captum's LayerIntegratedGradients computes)")
        first = first_order_map(loaded.model, layer_pair(loaded.model, chosen), inputs, extra, n_steps, has_cls, grid,
                                tolerance=tolerance)
    if runs and runs[0].method == spec.name:
        interactions: Optional[Tensor] = runs[0].cross[0]
        span_rows = torch.stack([runs[0].cross[0, start:stop].sum(0) for start, stop in spans])
        box_column = None
    else:
        assert drawn is not None
        interactions, span_rows, box_column = None, drawn.span_rows, drawn.box_column
    return Explanation(interactions, tokens, spans, labels, model_box, fitted.display, first, spec, chosen, fitted,
                       runs, caption, loaded.name, grid, has_cls, span_rows, box_column)


def _as_tensor_image(picture: np.ndarray) -> Tensor:
    import torch

    return torch.tensor(np.asarray(picture, dtype=np.uint8))[None]  # a copy: the display may be read-only
