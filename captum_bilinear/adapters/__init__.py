"""Models as users hold them, wrapped into a :class:`~captum_bilinear.DualEncoder`.

One small module per library, each with ``accepts(model)`` and ``wrap(model, ...)``:

* :mod:`captum_bilinear.adapters.hf` -- HuggingFace ``CLIPModel``, ``SiglipModel``;
* :mod:`captum_bilinear.adapters.open_clip` -- open_clip ``CLIP``, ``CustomTextCLIP``
  (``pip install captum-bilinear[open-clip]``);
* :mod:`captum_bilinear.adapters.sentence_transformers` -- ``SentenceTransformer``
  (``pip install captum-bilinear[sentence-transformers]``).

Models are recognised by their classes' modules, so none of the optional libraries is
imported unless the model comes from it. Every method takes such a model directly
(``BilinearIntegratedInteractions(model, layer)``) through
:func:`captum_bilinear.as_dual_encoder`.
"""

from typing import Any, Optional, Sequence

from captum_bilinear.adapters import hf, open_clip, sentence_transformers
from captum_bilinear.encoders import DualEncoder

#: ``(library, accepts, wrap)`` of each adapter, tried in this order.
ADAPTERS = (
    ("transformers", hf.is_supported_hf_model, hf.wrap),
    ("open_clip", open_clip.accepts, open_clip.wrap),
    ("sentence_transformers", sentence_transformers.accepts, sentence_transformers.wrap),
)


def wrap_model(
    model: Any,
    image_mean: Optional[Sequence[float]] = None,
    image_std: Optional[Sequence[float]] = None,
    processor: Any = None,
) -> DualEncoder:
    """``model`` wrapped by the first adapter that accepts it.

    Example:
        >>> import torch
        >>> wrap_model(torch.nn.Linear(2, 2))
        Traceback (most recent call last):
        ...
        TypeError: model: expected a transformers CLIPModel or SiglipModel, ...
    """
    for _, accepts, wrap in ADAPTERS:
        if accepts(model):
            return wrap(model, image_mean=image_mean, image_std=image_std, processor=processor)
    raise TypeError(
        "model: expected a transformers CLIPModel or SiglipModel, an open_clip CLIP model "
        "(pip install captum-bilinear[open-clip]), a sentence_transformers SentenceTransformer, or a "
        f"captum_bilinear.DualEncoder wrapping two encoders; got {type(model).__name__}"
    )
