"""Explaining one image-caption pair end to end: load a model, prepare the inputs, run
an interaction method and a first-order Captum method, and draw the paper's Figure 1.

This is what ``captum-bilinear explain`` runs; each step is also usable on its own.
"""

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from captum.attr import LayerIntegratedGradients
from torch import Tensor

from captum_bilinear.encoders import as_dual_encoder
from captum_bilinear.first_order import ConditionedSimilarity
from captum_bilinear.images import FittedImage, fit_image
from captum_bilinear.selection import patch_grid, token_labels, token_span

#: Short method names (as on the command line) and their classes' names.
METHODS: Dict[str, str] = {
    "bii": "BilinearIntegratedInteractions",
    "icam": "InteractionCAM",
    "ilime": "InteractionLIME",
    "itsm": "TokenPatchSimilarity",
    "fixlip": "WeightedBanzhafInteractions",
}

#: Words that do not belong to a noun phrase (caption spans default to the maximal runs
#: of other words).
STOP_WORDS = frozenset(
    "a an the and or of to in on at with without from by for is are there this that it its "
    "left right above below under over next near beside behind between top bottom side "
    "image picture photo photograph scene shows showing containing".split()
)


class ExplainError(ValueError):
    """Bad input to the explain pipeline (the command line prints it as one line).

    Example:
        >>> try:
        ...     read_image("no/such/file.png")
        ... except ExplainError as error:
        ...     print(error)
        --image: no such file: no/such/file.png
    """


@dataclass
class LoadedModel:
    """A dual encoder with what it needs around it."""

    model: Any
    tokenizer: Any
    image_processor: Any
    layer_index: int
    name: str


def load_model(model: Optional[str] = None) -> LoadedModel:
    """The bundled demo model (``model=None``) or any HF CLIP / SigLIP checkpoint from a
    local directory or a hub id (loaded with ``from_pretrained``, so it works where the
    user's cache or network has it).

    Example:
        >>> load_model().name
        'bundled demo CLIP'
    """
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    if model is None:
        from captum_bilinear.zoo import demo_settings, load_demo_model

        clip, tokenizer, processor = load_demo_model()
        return LoadedModel(clip, tokenizer, processor, int(demo_settings()["default_layer"]), "bundled demo CLIP")
    def first_line(error: Exception) -> str:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__

    try:
        loaded = AutoModel.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise ExplainError(f"--model: cannot load {model!r}: {first_line(error)}") from error
    try:
        as_dual_encoder(loaded)
    except TypeError as error:
        raise ExplainError(f"--model: {model!r} is a {type(loaded).__name__}, not a CLIP or SigLIP dual encoder") from error
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
        image_processor = AutoImageProcessor.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise ExplainError(f"--model: cannot load the tokenizer / image processor of {model!r}: {first_line(error)}") from error
    return LoadedModel(loaded.eval(), tokenizer, image_processor, -2, model)


def check_box_inside(box: Sequence[float], size: Tuple[int, int]) -> None:
    """Raises unless ``box = (x0, y0, x1, y1)`` is a non-empty box inside an image of
    ``size = (width, height)``.

    Example:
        >>> check_box_inside((0, 0, 64, 32), (64, 64))  # fine: returns None
        >>> check_box_inside((0, 0, 65, 32), (64, 64))
        Traceback (most recent call last):
        ...
        captum_bilinear.explain.ExplainError: --box: (0, 0, 65, 32) is not inside the 64x64 image (need 0 <= x0 < x1 <= width, 0 <= y0 < y1 <= height)
    """
    width, height = size
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ExplainError(f"--box: {tuple(box)} is not inside the {width}x{height} image "
                           "(need 0 <= x0 < x1 <= width, 0 <= y0 < y1 <= height)")


#: Kept for callers of the previous name; see :class:`captum_bilinear.images.FittedImage`.
PreparedImage = FittedImage


def read_image(path: str) -> Any:
    """The RGB PIL image at ``path`` (clear errors for a missing or unreadable file).

    Example:
        >>> import os, tempfile
        >>> from captum_bilinear.zoo import generate_scene
        >>> path = os.path.join(tempfile.mkdtemp(), "scene.png"); generate_scene(0).pil().save(path)
        >>> read_image(path).size
        (64, 64)
    """
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise ExplainError(f"--image: no such file: {path}")
    try:
        with Image.open(path) as opened:
            return opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ExplainError(f"--image: cannot read {path} as an image ({type(error).__name__})") from error


def prepare_image(image: Any, image_processor: Any, fit: str = "crop") -> FittedImage:
    """Prepares a PIL image like ``image_processor`` does (see
    :func:`captum_bilinear.images.fit_image`), with ``--flag`` names in its errors.

    Example:
        >>> from PIL import Image
        >>> prepared = prepare_image(Image.new("RGB", (128, 96)), load_model().image_processor)
        >>> prepared.display.shape, prepared.map_box((32, 0, 96, 48))  # 96 -> 64 px, centre crop
        ((64, 64, 3), (11.25, 0.0, 53.75, 32.0))
    """
    try:
        return fit_image(image, image_processor, fit)
    except ValueError as error:
        raise ExplainError(f"--model: {error}") from error


def noun_phrase_spans(tokens: Sequence[str]) -> List[Tuple[int, int]]:
    """Maximal runs of content words (no special tokens, no :data:`STOP_WORDS`), e.g.
    ``[BOS] a small red circle left of a blue square [EOS]`` -> "small red circle", "blue square".

    Example:
        >>> noun_phrase_spans(["[BOS]", "a", "red", "circle", "left", "of", "a", "blue", "square", "[EOS]"])
        [(2, 4), (7, 9)]
    """
    spans, start = [], None
    for index, token in enumerate(list(tokens) + ["[END]"]):
        content = not (token.startswith("[") and token.endswith("]")) and token.lower() not in STOP_WORDS and token.isalnum()
        if content and start is None:
            start = index
        elif not content and start is not None:
            spans.append((start, index))
            start = None
    return spans


def make_method(name: str, model: Any, layer: Any) -> Any:
    """The interaction method of a short name (see :data:`METHODS`).

    Example:
        >>> loaded = load_model()
        >>> layer = (loaded.model.text_model.encoder.layers[3], loaded.model.vision_model.encoder.layers[3])
        >>> type(make_method("icam", loaded.model, layer)).__name__
        'InteractionCAM'
    """
    import captum_bilinear

    if name not in METHODS:
        raise ExplainError(f"--method: expected one of {', '.join(METHODS)}, got {name!r}")
    method_class = getattr(captum_bilinear, METHODS[name])
    if name == "itsm":
        return method_class(model, layer, variant="hidden")
    return method_class(model, layer)


def run_method(method: Any, inputs: Tuple[Tensor, Tensor], extra: Any, n_steps: int, show_progress: bool,
               positions: Tuple[int, int]) -> Tensor:
    """Runs any interaction method with its own sensible settings; ``(batch, S, P)``.
    ``positions`` = (caption positions, image positions) sizes the sampling methods'
    budgets (at least what identifies their terms).

    Example:
        >>> from captum_bilinear.zoo import generate_scene, scene_inputs
        >>> loaded = load_model()
        >>> batch = scene_inputs(generate_scene(0), loaded.tokenizer, loaded.image_processor)
        >>> layer = (loaded.model.text_model.encoder.layers[3], loaded.model.vision_model.encoder.layers[3])
        >>> method = make_method("ilime", loaded.model, layer)
        >>> A = run_method(method, (batch["input_ids"], batch["pixel_values"]), ((batch["attention_mask"],), None),
        ...                n_steps=8, show_progress=False, positions=(batch["input_ids"].shape[1], 65))
        >>> A.shape[2]
        65
    """
    from captum_bilinear import InteractionLIME, WeightedBanzhafInteractions

    if isinstance(method, InteractionLIME):
        n_samples = max(1000, InteractionLIME.minimum_samples(*positions))
        return method.attribute(inputs, additional_forward_args=extra, n_samples=n_samples, random_state=0)
    if isinstance(method, WeightedBanzhafInteractions):
        budget = max(2**12, WeightedBanzhafInteractions.minimum_budget(*positions))
        return method.attribute(inputs, additional_forward_args=extra, budget=budget, random_state=0)
    if type(method).__name__ == "BilinearIntegratedInteractions":
        return method.attribute(inputs, additional_forward_args=extra, n_steps=n_steps, show_progress=show_progress)
    return method.attribute(inputs, additional_forward_args=extra)


def first_order_map(model: Any, layer: Any, inputs: Tuple[Tensor, Tensor], extra: Any, n_steps: int,
                    has_cls: bool, grid_size: Tuple[int, int]) -> Tensor:
    """Captum's ``LayerIntegratedGradients`` of the caption-conditioned similarity at the
    image layer, from the black image, summed over hidden dims: a ``(grid_h, grid_w)`` map.

    Example:
        >>> from captum_bilinear.zoo import generate_scene, scene_inputs
        >>> loaded = load_model()
        >>> batch = scene_inputs(generate_scene(0), loaded.tokenizer, loaded.image_processor)
        >>> layer = (loaded.model.text_model.encoder.layers[3], loaded.model.vision_model.encoder.layers[3])
        >>> first_order_map(loaded.model, layer, (batch["input_ids"], batch["pixel_values"]),
        ...                 ((batch["attention_mask"],), None), n_steps=4, has_cls=True, grid_size=(8, 8)).shape
        torch.Size([8, 8])
    """
    dual = as_dual_encoder(model)
    input_ids, pixel_values = inputs
    forward = ConditionedSimilarity(dual, input_ids, side="b", fixed_additional_forward_args=extra[0])
    (baseline,) = dual.default_baselines_b((pixel_values,), ())
    attributions = LayerIntegratedGradients(forward, layer[1]).attribute(pixel_values, baselines=baseline, n_steps=n_steps)
    return patch_grid(attributions.sum(-1)[0], grid_size, has_cls)


@dataclass
class Explanation:
    """The result of :func:`explain_pair`."""

    interactions: Tensor  #: ``(positions_a, positions_b)``
    tokens: List[str]
    spans: List[Tuple[int, int]]
    box: Optional[Tuple[float, float, float, float]]  #: in the model's image
    image: np.ndarray  #: the image as the model saw it
    first_order: Tensor  #: ``(grid_h, grid_w)``
    figure: Any


def explain_pair(
    image_path: str,
    caption: str,
    span: Optional[str] = None,
    box: Optional[Sequence[float]] = None,
    method: str = "bii",
    model: Optional[str] = None,
    n_steps: int = 32,
    layer: Optional[int] = None,
    show_progress: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> Explanation:
    """Explains one image-caption pair and draws the paper's Figure 1.

    Args:
        image_path: an image file.
        caption: the caption.
        span: a substring of the caption to map onto the image (default: every noun phrase).
        box: ``(x0, y0, x1, y1)`` in the original image's pixels to map onto the caption.
        method: ``bii``, ``icam``, ``ilime``, ``itsm`` or ``fixlip``.
        model: a HF CLIP / SigLIP directory or hub id (default: the bundled demo model).
        n_steps: quadrature nodes (BII and the first-order LIG).
        layer: encoder layer index to attribute (default: the model's default).
        show_progress: progress bars.
        log: receives one-line progress messages.

    Returns:
        An :class:`Explanation` with the figure.

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
    if method not in METHODS:
        raise ExplainError(f"--method: expected one of {', '.join(METHODS)}, got {method!r}")
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ExplainError(f"--n-steps: expected a positive integer, got {n_steps!r}")
    if not caption or not caption.strip():
        raise ExplainError("--caption: the caption is empty")
    if box is not None and len(box) != 4:
        raise ExplainError(f"--box: expected X0,Y0,X1,Y1, got {box}")
    if span is not None and span.lower() not in caption.lower():
        raise ExplainError(f"--span: {span!r} is not in the caption {caption!r}")
    image = read_image(image_path)
    if box is not None:
        check_box_inside(box, image.size)
    log(f"loading {'the bundled demo model' if model is None else model}")
    loaded = load_model(model)
    prepared = prepare_image(image, loaded.image_processor)
    model_box = prepared.map_box(box) if box is not None else None
    encoded = loaded.tokenizer(caption, return_tensors="pt", truncation=True)
    input_ids = encoded["input_ids"]
    tokens = token_labels(loaded.tokenizer, input_ids[0])
    if span is not None:
        try:
            spans = [token_span(loaded.tokenizer, caption, span)]
        except ValueError as error:
            raise ExplainError(f"--span: {str(error).split(': ', 1)[-1]}") from error
    else:
        spans = noun_phrase_spans(tokens) or [(1, max(2, len(tokens) - 1))]
    index = loaded.layer_index if layer is None else layer
    text_layers, vision_layers = loaded.model.text_model.encoder.layers, loaded.model.vision_model.encoder.layers
    if not -len(vision_layers) <= index < len(vision_layers):
        raise ExplainError(f"--layer: the model has {len(vision_layers)} layers, got {index}")
    layers = (text_layers[index], vision_layers[index])
    vision_config = loaded.model.config.vision_config
    grid = vision_config.image_size // vision_config.patch_size
    inputs = (input_ids, prepared.pixel_values)
    extra = ((encoded["attention_mask"],), None)
    log(f"attributing with {METHODS[method]} at layer {index}")
    image_positions = grid * grid + (1 if hasattr(loaded.model.vision_model.embeddings, "class_embedding") else 0)
    interactions = run_method(make_method(method, loaded.model, layers), inputs, extra, n_steps, show_progress,
                              (input_ids.shape[1], image_positions))[0]
    has_cls = interactions.shape[1] == grid * grid + 1
    log("first-order map: Captum LayerIntegratedGradients of the caption-conditioned similarity")
    first = first_order_map(loaded.model, layers, inputs, extra, n_steps, has_cls, (grid, grid))
    from captum_bilinear.visualization import plot_interaction_figure

    figure = plot_interaction_figure(
        prepared.display, tokens, interactions, spans, box=model_box, first_order_map=first,
        first_order_title="Captum LayerIntegratedGradients", grid_size=(grid, grid), has_cls=has_cls,
        title=f"{METHODS[method]} on {loaded.name}, layer {index}: \"{caption}\"",
    )
    return Explanation(interactions, tokens, spans, model_box, prepared.display, first, figure)
