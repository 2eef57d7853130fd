"""Explaining one image-caption pair end to end: load a model, prepare the inputs, run
an interaction method and a first-order Captum method, and draw the paper's Figure 1.

This is what ``captum-bilinear explain`` runs; each step is also usable on its own.
Errors and warnings name the Python argument they are about (``image_path: no such
file``); the command line shows them with its flags. Every check of the input runs before
any attribution does.
"""

import os
import re
import socket
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlparse

import numpy as np
from captum.attr import LayerIntegratedGradients
from torch import Tensor

from captum_bilinear.encoders import as_dual_encoder
from captum_bilinear._utils.adaptive_quadrature import StepCount, check_tolerance
from captum_bilinear._utils.step_limit import check_step_limit
from captum_bilinear.first_order import LIG_STEPS_WITH_AUTO, ConditionedSimilarity
from captum_bilinear.images import FITS, FittedImage, fit_image
from captum_bilinear.registry import MethodSpec, method_spec
from captum_bilinear.selection import patch_grid, token_labels, token_span

#: Words that do not belong to a noun phrase (caption spans default to the maximal runs
#: of other words).
STOP_WORDS = frozenset(
    "a an the and or of to in on at with without from by for is are there this that it its "
    "left right above below under over next near beside behind between top bottom side "
    "image picture photo photograph scene shows showing containing".split()
)

#: At most this many noun phrases get a panel when no span is given (the figure's size
#: stays bounded for long captions).
MAX_SPANS = 6

#: The layer name that selects both encoders' embeddings layers.
EMBEDDINGS = "embeddings"

Layer = Union[int, str]


@dataclass
class LoadedModel:
    """A dual encoder with what it needs around it."""

    model: Any
    tokenizer: Any
    image_processor: Any
    default_layer: Layer  #: an encoder layer index or ``"embeddings"``
    name: str
    vocabulary: Optional[Sequence[str]] = None  #: the only words the model knows, where that is known


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """transformers' own progress bar over the weights is hidden (one bar per long task:
    the attribution's)."""
    from transformers.utils import logging as transformers_logging

    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def _hub_unreachable(endpoint: str, timeout: float = 3.0) -> Optional[str]:
    """Why ``endpoint`` cannot be reached (None if it can, or if a proxy decides)."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname or "", port), timeout=timeout).close()
    except OSError as error:
        return str(error) or type(error).__name__
    return None


def _loading_options(model: str) -> Dict[str, Any]:
    """``from_pretrained`` options for a directory or hub id, or a clear ``ValueError``
    before any download is tried (no retries against an unreachable hub)."""
    if os.path.isdir(model):
        return {}
    if os.path.exists(model):
        raise ValueError(f"model: {model} is a file; expected a model directory or a hub id")
    if not _HUB_ID.match(model) or ".." in model or "--" in model or model.startswith(("/", ".", "~")):
        raise ValueError(f"model: there is no directory {model}")
    import huggingface_hub
    from huggingface_hub import constants

    cached = isinstance(huggingface_hub.try_to_load_from_cache(model, "config.json"), str)
    first = model.split("/")[0]
    if "/" in model and os.path.isdir(first) and not cached:  # mymodels/clip with mymodels/ here: a path
        raise ValueError(f"model: there is no directory {model} (the directory {first} exists, so this is read "
                         "as a path, not as a hub id)")
    offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    if offline:
        if cached:
            return {"local_files_only": True}
        raise ValueError(f"model: {model!r} is not in the local Hugging Face cache and the hub is offline "
                         "(HF_HUB_OFFLINE); expected a model directory or a cached hub id")
    reason = _hub_unreachable(constants.ENDPOINT)
    if reason is not None:
        if cached:
            return {"local_files_only": True}
        raise ValueError(f"model: {model!r} is not in the local Hugging Face cache and the hub "
                         f"({constants.ENDPOINT}) is unreachable ({reason}); nor is there a directory {model}")
    return {}


def load_model(model: Optional[str] = None) -> LoadedModel:
    """The bundled demo model (``model=None``) or any HF CLIP / SigLIP checkpoint from a
    local directory or a hub id (loaded with ``from_pretrained``, from the cache when the
    hub cannot be reached).

    Args:
        model: a directory, a hub id, or None for the bundled demo model.

    Returns:
        A :class:`LoadedModel`.

    Raises:
        ValueError: naming ``model``: no such directory (also ``dir/name`` when ``dir``
            is a directory here and no hub id of that name is cached), a hub id that is
            neither cached nor reachable, not a CLIP / SigLIP dual encoder.

    Example:
        >>> load_model().name
        'bundled demo CLIP'
        >>> load_model("/no/such/model")
        Traceback (most recent call last):
        ...
        ValueError: model: there is no directory /no/such/model
    """
    if model is None:
        from captum_bilinear.zoo import VOCABULARY, demo_settings, load_demo_model

        with _quiet_loading():
            clip, tokenizer, processor = load_demo_model()
        default = demo_settings()["default_layer"]
        return LoadedModel(clip, tokenizer, processor, default if default == EMBEDDINGS else int(default),
                           "bundled demo CLIP", VOCABULARY)
    if not isinstance(model, str):
        raise TypeError(f"model: expected a directory or a hub id (str), got {type(model).__name__}")
    options = _loading_options(model)
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    def first_line(error: Exception) -> str:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__

    try:
        with _quiet_loading():
            loaded = AutoModel.from_pretrained(model, **options)
    except (OSError, ValueError) as error:
        raise ValueError(f"model: cannot load {model!r}: {first_line(error)}") from error
    try:
        as_dual_encoder(loaded)
    except TypeError as error:
        raise ValueError(f"model: {model!r} is a {type(loaded).__name__}, not a CLIP or SigLIP dual encoder") from error
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, **options)
        image_processor = AutoImageProcessor.from_pretrained(model, **options)
    except (OSError, ValueError) as error:
        raise ValueError(f"model: cannot load the tokenizer / image processor of {model!r}: {first_line(error)}") from error
    return LoadedModel(loaded.eval(), tokenizer, image_processor, -2, model)


def read_image(path: str) -> Any:
    """The RGB PIL image at ``path`` (clear errors for a missing or unreadable file).

    Example:
        >>> import os, tempfile
        >>> from captum_bilinear.zoo import generate_scene
        >>> path = os.path.join(tempfile.mkdtemp(), "scene.png"); generate_scene(0).pil().save(path)
        >>> read_image(path).size
        (64, 64)
        >>> read_image("no/such/file.png")
        Traceback (most recent call last):
        ...
        ValueError: image_path: no such file: no/such/file.png
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"image_path: expected a file path, got {type(path).__name__}")
    if not os.path.isfile(path):
        raise ValueError(f"image_path: no such file: {path}")
    try:
        with Image.open(path) as opened:
            return opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"image_path: cannot read {path} as an image ({type(error).__name__})") from error


def _is_demo_tokenizer(tokenizer: Any) -> bool:
    from captum_bilinear.zoo import DEMO_MODEL_DIR

    path = getattr(tokenizer, "name_or_path", "") or ""
    return bool(path) and os.path.realpath(path) == os.path.realpath(DEMO_MODEL_DIR)


def unknown_words(caption: str, vocabulary: Sequence[str]) -> List[str]:
    """The words of ``caption`` (lower-cased, in order, once each) that are not in ``vocabulary``.

    Example:
        >>> unknown_words("A dog on a sofa, a dog", ["a", "on", ","])
        ['dog', 'sofa']
    """
    known = {word.lower() for word in vocabulary}
    words = re.findall(r"[a-z]+|[0-9]+|[^\sa-z0-9]", caption.lower())
    return [word for word in dict.fromkeys(words) if word not in known]


def _tokenizer_limit(tokenizer: Any) -> Optional[int]:
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 100_000 else None


def encode_caption(
    tokenizer: Any, caption: str, max_length: Optional[int] = None, vocabulary: Optional[Sequence[str]] = None
) -> Any:
    """Tokenizes a caption as the model reads it, warning about what it cannot read.

    Warns (``UserWarning``, naming ``caption``) when the caption is longer than the model
    reads (it is cut, as the tokenizer's truncation does) and when a model that knows only
    a fixed vocabulary -- the bundled demo model, or any ``vocabulary`` given -- meets
    words outside it: its tokenizer splits them into pieces the model never saw as words.

    Args:
        tokenizer: a HF tokenizer.
        caption: the caption.
        max_length: the most tokens the model reads (default: the tokenizer's
            ``model_max_length``).
        vocabulary: the words the model knows (default: the demo vocabulary for the
            bundled demo tokenizer, else no check).

    Returns:
        The tokenizer's ``BatchEncoding`` (``input_ids``, ``attention_mask``; batch of 1,
        PyTorch tensors).

    Example:
        >>> import warnings
        >>> from captum_bilinear.zoo import load_demo_model
        >>> _, tokenizer, _ = load_demo_model()
        >>> encode_caption(tokenizer, "a red circle")["input_ids"].shape
        torch.Size([1, 5])
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     _ = encode_caption(tokenizer, "a dog")
        >>> "'dog' (d o g)" in str(caught[0].message)
        True
    """
    if not isinstance(caption, str):
        raise TypeError(f"caption: expected a str, got {type(caption).__name__}")
    if not caption.strip():
        raise ValueError("caption: the caption is empty")
    if vocabulary is None and _is_demo_tokenizer(tokenizer):
        from captum_bilinear.zoo import VOCABULARY

        vocabulary = VOCABULARY
    if vocabulary is not None:
        unknown = unknown_words(caption, vocabulary)
        if unknown:
            pieces = ", ".join(
                f"'{word}' ({' '.join(piece.replace('</w>', '') for piece in tokenizer.tokenize(word))})"
                for word in unknown)
            warnings.warn(
                f"caption: the model knows only the words of its training scenes; its tokenizer splits {pieces} "
                f"into pieces it never saw as words, so their attributions mean little. "
                f"The words it knows: {' '.join(vocabulary)}", UserWarning, stacklevel=2)
    limits = [limit for limit in (max_length, _tokenizer_limit(tokenizer)) if limit]
    limit = min(limits) if limits else None
    length = len(tokenizer(caption, truncation=False, verbose=False)["input_ids"])
    if limit is not None and length > limit:
        kept = tokenizer(caption, truncation=True, max_length=limit, return_offsets_mapping=True)
        ends = [end for start, end in kept.get("offset_mapping", []) if end > start]
        where = f" after {caption[:max(ends)][-40:]!r}" if ends else ""
        warnings.warn(f"caption: {length} tokens (start and end included), but the model reads at most {limit}: "
                      f"it is cut{where}", UserWarning, stacklevel=2)
    return tokenizer(caption, truncation=limit is not None, max_length=limit, return_tensors="pt")


def noun_phrase_spans(tokens: Sequence[str], words: Optional[Sequence[Tuple[int, int]]] = None) -> List[Tuple[int, int]]:
    """Maximal runs of content words (no special tokens, no :data:`STOP_WORDS`), e.g.
    ``[BOS] a small red circle left of a blue square [EOS]`` -> "small red circle", "blue square".

    Args:
        tokens: token labels (:func:`~captum_bilinear.selection.token_labels`).
        words: the token positions ``(start, stop)`` of each word, in order, where words
            are split into several tokens (:func:`caption_words`); default: one word per token.

    Returns:
        Token spans ``(start, stop)``, stop exclusive.

    Example:
        >>> noun_phrase_spans(["[BOS]", "a", "red", "circle", "left", "of", "a", "blue", "square", "[EOS]"])
        [(2, 4), (7, 9)]
        >>> noun_phrase_spans(["[BOS]", "a", "d", "o", "g", "[EOS]"], words=[(1, 2), (2, 5)])  # "a dog"
        [(2, 5)]
    """
    words = [(index, index + 1) for index in range(len(tokens))] if words is None else list(words)
    spans, start, end = [], None, None
    for word_start, word_stop in words + [(len(tokens), len(tokens))]:
        text = "".join(tokens[word_start:word_stop])
        special = any(token.startswith("[") and token.endswith("]") for token in tokens[word_start:word_stop])
        content = bool(text) and not special and text.lower() not in STOP_WORDS and text.isalnum()
        if content and start is None:
            start = word_start
        elif not content and start is not None:
            spans.append((start, end))
            start = None
        end = word_stop
    return spans


def caption_words(tokenizer: Any, caption: str, max_length: Optional[int] = None) -> Optional[List[Tuple[int, int]]]:
    """The token positions ``(start, stop)`` of each word of ``caption``: letters and
    digits with no space between them form one word, whatever the tokenizer made of them
    (from a fast tokenizer's offsets; None where the tokenizer gives none).

    Args:
        tokenizer: a HF tokenizer.
        caption: the caption.
        max_length: the most tokens the model reads (as in :func:`encode_caption`).

    Example:
        >>> from captum_bilinear.zoo import load_demo_model
        >>> _, tokenizer, _ = load_demo_model()
        >>> caption_words(tokenizer, "a dog, a star")  # [BOS] a d o g , a star [EOS]
        [(0, 1), (1, 2), (2, 5), (5, 6), (6, 7), (7, 8), (8, 9)]
    """
    try:
        encoding = tokenizer(caption, return_offsets_mapping=True, truncation=max_length is not None,
                             max_length=max_length)
        offsets = encoding["offset_mapping"]
    except (NotImplementedError, TypeError, ValueError, KeyError):
        return None
    words: List[Tuple[int, int]] = []
    previous_end = None
    for index, (start, end) in enumerate(offsets):
        piece = caption[start:end]
        if piece.isalnum() and previous_end == start and words:
            words[-1] = (words[-1][0], index + 1)
        else:
            words.append((index, index + 1))
        previous_end = end if piece.isalnum() else None
    return words


def make_method(name: str, model: Any, layer: Any) -> Any:
    """The interaction method of a short name or result name (see
    :data:`captum_bilinear.registry.METHODS`).

    Example:
        >>> loaded = load_model()
        >>> layer = (loaded.model.text_model.encoder.layers[3], loaded.model.vision_model.encoder.layers[3])
        >>> type(make_method("icam", loaded.model, layer)).__name__
        'InteractionCAM'
    """
    return method_spec(name).make(model, layer)


def run_method(method: Any, inputs: Tuple[Tensor, Tensor], extra: Any, n_steps: StepCount, show_progress: bool,
               tolerance: float = 1e-4) -> Tensor:
    """Runs any interaction method with its own sensible settings; ``(batch, S, P)``.
    The sampling methods size their samples / budget themselves (the paper's default,
    raised to what identifies their terms) and are seeded with 0; BII takes ``n_steps``,
    ``tolerance`` and ``show_progress``.

    Example:
        >>> from captum_bilinear.zoo import generate_scene, scene_inputs
        >>> loaded = load_model()
        >>> batch = scene_inputs(generate_scene(0), loaded.tokenizer, loaded.image_processor)
        >>> layer = (loaded.model.text_model.embeddings, loaded.model.vision_model.embeddings)
        >>> method = make_method("ilime", loaded.model, layer)
        >>> A = run_method(method, (batch["input_ids"], batch["pixel_values"]), ((batch["attention_mask"],), None),
        ...                n_steps=8, show_progress=False)
        >>> A.shape[2]
        65
    """
    from captum_bilinear import BilinearIntegratedInteractions, InteractionLIME, WeightedBanzhafInteractions

    if isinstance(method, (InteractionLIME, WeightedBanzhafInteractions)):
        return method.attribute(inputs, additional_forward_args=extra, random_state=0)
    if isinstance(method, BilinearIntegratedInteractions):
        return method.attribute(inputs, additional_forward_args=extra, n_steps=n_steps, tolerance=tolerance,
                                show_progress=show_progress)
    return method.attribute(inputs, additional_forward_args=extra)


def check_layer(layer: Any, model: Any) -> Layer:
    """``layer`` if it names a layer pair of the CLIP / SigLIP ``model``: ``"embeddings"``
    or an encoder layer index (negative from the top), else ``ValueError`` naming ``layer``.

    Example:
        >>> check_layer(-1, load_model().model)
        -1
        >>> check_layer(9, load_model().model)
        Traceback (most recent call last):
        ...
        ValueError: layer: the model has 6 layers (-6 .. 5) and 'embeddings', got 9
    """
    if layer == EMBEDDINGS:
        return layer
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise ValueError(f"layer: expected 'embeddings' or an int (an encoder layer index), got {layer!r}")
    count = len(model.vision_model.encoder.layers)
    if not -count <= int(layer) < count:
        raise ValueError(f"layer: the model has {count} layers ({-count} .. {count - 1}) and 'embeddings', got {layer}")
    return int(layer)


def layer_pair(model: Any, layer: Layer) -> Tuple[Any, Any]:
    """The ``(text, vision)`` modules of a CLIP / SigLIP model for ``"embeddings"`` or an
    encoder layer index.

    Example:
        >>> [type(module).__name__ for module in layer_pair(load_model().model, "embeddings")]
        ['CLIPTextEmbeddings', 'CLIPVisionEmbeddings']
    """
    layer = check_layer(layer, model)
    if layer == EMBEDDINGS:
        return model.text_model.embeddings, model.vision_model.embeddings
    return model.text_model.encoder.layers[layer], model.vision_model.encoder.layers[layer]


def first_order_map(model: Any, layer: Any, inputs: Tuple[Tensor, Tensor], extra: Any, n_steps: StepCount,
                    has_cls: bool, grid_size: Tuple[int, int]) -> Tensor:
    """Captum's ``LayerIntegratedGradients`` of the caption-conditioned similarity at the
    image layer, from the black image, summed over hidden dims: a ``(grid_h, grid_w)`` map
    (``n_steps="auto"``: Captum's LIG takes an int; :data:`LIG_STEPS_WITH_AUTO`).

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
    steps = LIG_STEPS_WITH_AUTO if n_steps == "auto" else n_steps
    attributions = LayerIntegratedGradients(forward, layer[1]).attribute(pixel_values, baselines=baseline, n_steps=steps)
    return patch_grid(attributions.sum(-1)[0], grid_size, has_cls)


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


def span_label(tokenizer: Any, caption: str, span: Tuple[int, int], tokens: Sequence[str]) -> str:
    """The caption's own text of a token span (``"dog"``, not the pieces ``"d o g"``), from
    a fast tokenizer's offsets; the tokens' labels joined by spaces otherwise.

    Example:
        >>> from captum_bilinear.zoo import load_demo_model
        >>> _, tokenizer, _ = load_demo_model()
        >>> span_label(tokenizer, "a dog", (2, 5), ["[BOS]", "a", "d", "o", "g", "[EOS]"])
        'dog'
    """
    try:
        offsets = tokenizer(caption, return_offsets_mapping=True)["offset_mapping"]
        start, stop = offsets[span[0]][0], offsets[span[1] - 1][1]
    except (NotImplementedError, TypeError, ValueError, KeyError, IndexError):
        return " ".join(tokens[span[0]:span[1]])
    return caption[start:stop] if stop > start else " ".join(tokens[span[0]:span[1]])


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
    vision_config = loaded.model.config.vision_config
    grid = (vision_config.image_size // vision_config.patch_size,) * 2
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
    inputs = (input_ids, fitted.pixel_values)
    extra = ((encoded["attention_mask"],), None)
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
