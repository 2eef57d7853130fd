"""Loading a dual encoder for ``explain`` and ``evaluate``: a bundled demo model
(``demo-clip``, the default, or ``demo-siglip2``) or any HF CLIP / SigLIP checkpoint (a
directory or a hub id, from the cache when the hub cannot be reached), and the layer
pairs the gradient methods attribute in it."""

import os
import re
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union
from urllib.parse import urlparse

import numpy as np

from captum_bilinear.adapters import as_dual_encoder

#: The layer name that selects both encoders' embeddings layers.
EMBEDDINGS = "embeddings"
#: The bundled demo models by the name ``--model`` takes (these names always mean them;
#: a directory of the same name is ``./demo-clip``): the CLIP and the SigLIP-2
#: architecture trained on the generated world (:mod:`captum_bilinear.zoo`).
DEMO_MODELS = {"demo-clip": "bundled demo CLIP", "demo-siglip2": "bundled demo SigLIP-2"}

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


def _demo_layer(default: Any) -> Layer:
    return default if default == EMBEDDINGS else int(default)


def load_demo(name: str) -> LoadedModel:
    """A bundled demo model by name (``"demo-clip"`` or ``"demo-siglip2"``).

    Raises:
        ValueError: naming ``model``: another name, or ``"demo-siglip2"`` under a
            transformers without ``Siglip2Model`` (before 4.49).

    Example:
        >>> load_demo("demo-clip").name
        'bundled demo CLIP'
    """
    from captum_bilinear.zoo import VOCABULARY

    if name == "demo-clip":
        from captum_bilinear.zoo import demo_settings, load_demo_model

        with _quiet_loading():
            clip, tokenizer, processor = load_demo_model()
        return LoadedModel(clip, tokenizer, processor, _demo_layer(demo_settings()["default_layer"]),
                           DEMO_MODELS[name], VOCABULARY)
    if name == "demo-siglip2":
        from captum_bilinear.zoo.siglip2 import load_demo_siglip2, siglip2_available, siglip2_settings

        if not siglip2_available():
            import transformers

            raise ValueError(f"model: demo-siglip2 needs transformers >= 4.49 (Siglip2Model); this is transformers "
                             f"{transformers.__version__}")
        with _quiet_loading():
            siglip2, tokenizer, processor = load_demo_siglip2()
        return LoadedModel(siglip2, tokenizer, processor, _demo_layer(siglip2_settings()["default_layer"]),
                           DEMO_MODELS[name], VOCABULARY)
    raise ValueError(f"model: expected one of the bundled demo models {sorted(DEMO_MODELS)}, got {name!r}")


def load_model(model: Optional[str] = None) -> LoadedModel:
    """A bundled demo model (``model=None`` or ``"demo-clip"``: the demo CLIP;
    ``"demo-siglip2"``: the demo SigLIP-2) or any HF CLIP / SigLIP checkpoint from a
    local directory or a hub id (loaded with ``from_pretrained``, from the cache when the
    hub cannot be reached).

    Args:
        model: a directory, a hub id, a name of :data:`DEMO_MODELS`, or None for the
            bundled demo CLIP.

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
        return load_demo("demo-clip")
    if isinstance(model, str) and model in DEMO_MODELS:
        return load_demo(model)
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
    if not _has_transformer_towers(loaded):
        raise ValueError(f"model: {model!r} is a {type(loaded).__name__}: the command line explains CLIP, SigLIP and "
                         "SigLIP-2 checkpoints (transformer towers over image patches); this family is explained "
                         "in Python, BilinearIntegratedInteractions(model, layers) on its processor's inputs "
                         "(README: Other dual encoders)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, **options)
        image_processor = AutoImageProcessor.from_pretrained(model, **options)
    except (OSError, ValueError) as error:
        raise ValueError(f"model: cannot load the tokenizer / image processor of {model!r}: {first_line(error)}") from error
    return LoadedModel(loaded.eval(), tokenizer, image_processor, -2, model)


def _has_transformer_towers(model: Any) -> bool:
    """Whether ``model`` has what the command line's pipeline reads: CLIP-style text and
    vision transformers (``text_model`` / ``vision_model`` with ``embeddings`` and
    ``encoder.layers``) over image patches (``config.vision_config.patch_size``)."""
    towers = [getattr(model, name, None) for name in ("text_model", "vision_model")]
    return all(hasattr(tower, "embeddings") and hasattr(getattr(tower, "encoder", None), "layers") for tower in towers) \
        and hasattr(getattr(model.config, "vision_config", None), "patch_size")


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

