"""The interaction methods by short name: one registry for ``explain``, ``evaluate`` and
user code that picks a method by name.

Example:
    >>> from captum_bilinear.registry import METHODS, method_spec
    >>> sorted(METHODS)
    ['bii', 'fixlip', 'icam', 'ilime', 'itsm', 'itsm-o']
    >>> method_spec("ITSM-H").short
    'itsm'
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple, Union


def _make(class_name: str, **options: Any) -> Callable[[Any, Any], Any]:
    def make(model: Any, layer: Any) -> Any:
        import captum_bilinear

        return getattr(captum_bilinear, class_name)(model, layer, **options)

    return make


@dataclass(frozen=True)
class MethodSpec:
    """One interaction method.

    Attributes:
        short: the command line's name (``bii``).
        name: the name results and figures use (``BilinearIntegratedInteractions``, ``ITSM-H``).
        class_name: the class in :mod:`captum_bilinear`.
        make: ``make(model, layer)`` builds the method.
        masks_inputs: the method perturbs positions rather than differentiating, and is run
            on the embeddings layers (the inputs), as its paper does.
        units: what the values of its interactions are in.
    """

    short: str
    name: str
    class_name: str
    make: Callable[[Any, Any], Any]
    masks_inputs: bool
    units: str


_SIMILARITY = "similarity"

#: The interaction methods by short name.
METHODS: Dict[str, MethodSpec] = {
    spec.short: spec
    for spec in (
        MethodSpec("bii", "BilinearIntegratedInteractions", "BilinearIntegratedInteractions",
                   _make("BilinearIntegratedInteractions"), False, _SIMILARITY),
        MethodSpec("icam", "InteractionCAM", "InteractionCAM", _make("InteractionCAM"), False, _SIMILARITY),
        MethodSpec("ilime", "InteractionLIME", "InteractionLIME", _make("InteractionLIME"), True, _SIMILARITY),
        MethodSpec("itsm", "ITSM-H", "TokenPatchSimilarity", _make("TokenPatchSimilarity", variant="hidden"), False,
                   "cosine of token and patch embeddings"),
        MethodSpec("itsm-o", "ITSM-O", "TokenPatchSimilarity", _make("TokenPatchSimilarity", variant="output"), False,
                   "cosine of token and patch embeddings"),
        MethodSpec("fixlip", "WeightedBanzhafInteractions", "WeightedBanzhafInteractions",
                   _make("WeightedBanzhafInteractions"), True, _SIMILARITY),
    )
}


def method_spec(name: str) -> MethodSpec:
    """The method of a short name (``bii``) or a result name (``BilinearIntegratedInteractions``,
    ``ITSM-H``), case-insensitive.

    Raises:
        ValueError: naming ``method`` and the known names.

    Example:
        >>> method_spec("BII").name, method_spec("ITSM-O").class_name
        ('BilinearIntegratedInteractions', 'TokenPatchSimilarity')
    """
    if isinstance(name, str):
        key = name.lower()
        for spec in METHODS.values():
            if key in (spec.short, spec.name.lower()):
                return spec
    known = ", ".join(f"{spec.short} ({spec.name})" for spec in METHODS.values())
    raise ValueError(f"method: expected one of {known}; got {name!r}")


def make_method(name: str, model: Any, layer: Any) -> Any:
    """The interaction method of a short name or result name (see
    :data:`captum_bilinear.registry.METHODS`).

    Example:
        >>> from captum_bilinear.loading import load_model
        >>> loaded = load_model()
        >>> layer = (loaded.model.text_model.encoder.layers[3], loaded.model.vision_model.encoder.layers[3])
        >>> type(make_method("icam", loaded.model, layer)).__name__
        'InteractionCAM'
    """
    return method_spec(name).make(model, layer)


def run_method(method: Any, inputs: Tuple[Any, Any], extra: Any, n_steps: Union[int, str], show_progress: bool,
               tolerance: float = 1e-4) -> Any:
    """Runs any interaction method with its own sensible settings; ``(batch, S, P)``.
    The sampling methods size their samples / budget themselves (the paper's default,
    raised to what identifies their terms) and are seeded with 0; BII takes ``n_steps``,
    ``tolerance`` and ``show_progress``.

    Example:
        >>> from captum_bilinear.zoo import generate_scene, scene_inputs
        >>> from captum_bilinear.loading import load_model
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


def run_method_terms(method: Any, inputs: Tuple[Any, Any], extra: Any, n_steps: Union[int, str], show_progress: bool,
                     tolerance: float = 1e-4) -> Any:
    """As :func:`run_method`, with the method's whole decomposition
    (:class:`~captum_bilinear.InteractionTerms`, ``attribute_terms``) instead of the
    interactions alone; what ``explain`` saves and the page shows.

    Example:
        >>> from captum_bilinear.zoo import generate_scene, scene_inputs
        >>> from captum_bilinear.loading import load_model
        >>> loaded = load_model()
        >>> batch = scene_inputs(generate_scene(0), loaded.tokenizer, loaded.image_processor)
        >>> layer = (loaded.model.text_model.embeddings, loaded.model.vision_model.embeddings)
        >>> terms = run_method_terms(make_method("bii", loaded.model, layer), (batch["input_ids"], batch["pixel_values"]),
        ...                          ((batch["attention_mask"],), None), n_steps=8, show_progress=False)
        >>> terms.method, terms.cross.shape[2]
        ('BilinearIntegratedInteractions', 65)
    """
    from captum_bilinear import BilinearIntegratedInteractions, InteractionLIME, WeightedBanzhafInteractions

    if isinstance(method, (InteractionLIME, WeightedBanzhafInteractions)):
        return method.attribute_terms(inputs, additional_forward_args=extra, random_state=0)
    if isinstance(method, BilinearIntegratedInteractions):
        return method.attribute_terms(inputs, additional_forward_args=extra, n_steps=n_steps, tolerance=tolerance,
                                      show_progress=show_progress)
    return method.attribute_terms(inputs, additional_forward_args=extra)
