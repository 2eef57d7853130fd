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

import warnings
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np
from torch import Tensor

from captum_bilinear._utils.adaptive_quadrature import StepCount, check_tolerance
from captum_bilinear._utils.step_limit import check_step_limit
from captum_bilinear.first_order import first_order_map
from captum_bilinear.images import FITS, FittedImage, fit_image, image_to_patches, is_naflex_processor, read_image
from captum_bilinear.loading import EMBEDDINGS, Layer, check_layer, layer_pair, load_model
from captum_bilinear.registry import MethodSpec, method_spec, run_method
from captum_bilinear.selection import caption_words, encode_caption, noun_phrase_spans, span_label, token_labels, token_span

# Moved to their own modules; importable from here under their old names (explicit re-exports).
from captum_bilinear.loading import LoadedModel as LoadedModel
from captum_bilinear.registry import make_method as make_method
from captum_bilinear.selection import STOP_WORDS as STOP_WORDS
from captum_bilinear.selection import unknown_words as unknown_words

#: At most this many noun phrases get a panel when no span is given (the figure's size
#: stays bounded for long captions).
MAX_SPANS = 6


@dataclass
class Explanation:
    """The result of :func:`explain_pair`."""

    interactions: Tensor  #: ``(positions_a, positions_b)``
    tokens: List[str]
    spans: List[Tuple[int, int]]
    labels: List[str]  #: each span's words as the caption writes them
    box: Optional[Tuple[float, float, float, float]]  #: in the model's image
    image: np.ndarray  #: the image as the model saw it
    first_order: Tensor  #: ``(grid_h, grid_w)``
    figure: Any
    method: MethodSpec  #: the method that computed ``interactions``
    layer: Layer  #: the layer pair it attributed: an encoder layer index or ``"embeddings"``
    fitted: FittedImage  #: how the image was fitted to the model


def _check_arguments(method: Any, n_steps: Any, tolerance: Any, layer: Any, fit: Any, box: Any) -> MethodSpec:
    spec = method_spec(method)
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
    return spec


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
            return [token_span(tokenizer, caption, span)]
        except ValueError as error:
            raise ValueError(f"span: {str(error).split(': ', 1)[-1]}") from error
    spans = noun_phrase_spans(tokens, caption_words(tokenizer, caption, len(tokens))) or [(1, max(2, len(tokens) - 1))]
    if len(spans) > MAX_SPANS:
        log(f"span: showing the first {MAX_SPANS} of {len(spans)} noun phrases; span='words' picks one")
    return spans[:MAX_SPANS]



def explain_pair(
    image_path: str,
    caption: str,
    span: Optional[str] = None,
    box: Optional[Sequence[float]] = None,
    method: str = "bii",
    model: Optional[str] = None,
    n_steps: StepCount = "auto",
    tolerance: float = 1e-2,
    layer: Optional[Layer] = None,
    fit: str = "crop",
    show_progress: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> Explanation:
    """Explains one image-caption pair and draws the paper's Figure 1.

    Args:
        image_path: an image file.
        caption: the caption.
        span: a substring of the caption to map onto the image (default: every noun
            phrase, at most :data:`MAX_SPANS`).
        box: ``(x0, y0, x1, y1)`` in the original image's pixels to map onto the caption;
            it must hold at least one patch centre of what the model sees.
        method: a short name of :data:`captum_bilinear.registry.METHODS` (``bii``,
            ``icam``, ``ilime``, ``itsm``, ``itsm-o``, ``fixlip``).
        model: a HF CLIP / SigLIP directory or hub id (default: the bundled demo model).
        n_steps: BII's quadrature nodes (at most 4096, which also bounds the first-order
            LIG's), or ``"auto"``: as many as ``tolerance`` needs (the first-order LIG then
            uses :data:`LIG_STEPS_WITH_AUTO`).
        tolerance: relative completeness error of ``n_steps="auto"`` (default 1e-2, a
            figure's accuracy; measurements use 1e-4).
        layer: the layer pair the gradient methods attribute: an encoder layer index or
            ``"embeddings"`` (default: the model's default). The masking methods
            (InteractionLIME, FIxLIP) mask the inputs, i.e. run at the embeddings.
        fit: how an image that is not square is fitted: ``"crop"`` as the model's
            processor does, or ``"pad"`` to a square first (:func:`~captum_bilinear.images.fit_image`).
        show_progress: progress bars.
        log: receives one-line messages on what is done (how the image was fitted, ...).

    Returns:
        An :class:`Explanation` with the figure.

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
        >>> result.interactions.shape[1]  # CLS + 8 x 8 patches of the demo model
        65
    """
    spec = _check_arguments(method, n_steps, tolerance, layer, fit, box)
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError("caption: the caption is empty")
    if span is not None and span.lower() not in caption.lower():
        raise ValueError(f"span: {span!r} is not in the caption {caption!r}")
    image = read_image(image_path)
    log(f"loading {'the bundled demo model' if model is None else model}")
    loaded = load_model(model)
    requested = check_layer(loaded.default_layer if layer is None else layer, loaded.model)
    chosen = EMBEDDINGS if spec.masks_inputs else requested
    if spec.masks_inputs and layer is not None and layer != EMBEDDINGS:
        log(f"layer: {spec.name} masks the inputs (the embeddings layers); layer={layer} is not used")
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

    layers = layer_pair(loaded.model, chosen)
    pixel_values, image_extra = fitted.pixel_values, None
    if is_naflex_processor(loaded.image_processor):  # SigLIP-2: patches, (pixel_attention_mask, spatial_shapes)
        pixel_values, pixel_attention_mask, spatial_shapes = image_to_patches(fitted.pixel_values, patch)
        image_extra = (pixel_attention_mask, spatial_shapes)
    inputs = (input_ids, pixel_values)
    extra = ((encoded["attention_mask"],), image_extra)
    where = "the embeddings layers (the inputs)" if chosen == EMBEDDINGS else f"encoder layer {chosen}"
    log(f"attributing with {spec.name} at {where}")
    interactions = run_method(spec.make(loaded.model, layers), inputs, extra, n_steps, show_progress, tolerance)[0]
    has_cls = interactions.shape[1] == grid[0] * grid[1] + 1
    log("first-order map: Captum LayerIntegratedGradients of the caption-conditioned similarity")
    first = first_order_map(loaded.model, layers, inputs, extra, n_steps, has_cls, grid)
    from captum_bilinear.visualization import plot_interaction_figure

    figure = plot_interaction_figure(
        fitted.display, tokens, interactions, spans, box=model_box, first_order_map=first,
        first_order_title="Captum LayerIntegratedGradients", grid_size=grid, has_cls=has_cls,
        title=f"{spec.name} on the {loaded.name}, {where}: \"{caption if len(caption) <= 90 else caption[:87] + '...'}\"",
        units=spec.units, first_order_units="similarity", span_labels=labels,
    )
    return Explanation(interactions, tokens, spans, labels, model_box, fitted.display, first, figure, spec, chosen,
                       fitted)

