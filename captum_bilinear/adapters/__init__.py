"""Models as users hold them, wrapped into a :class:`~captum_bilinear.DualEncoder`.

One small module per library, each with ``accepts(model)`` and ``wrap(model, ...)``:

* :mod:`captum_bilinear.adapters.hf` -- HuggingFace dual encoders: ``CLIPModel``,
  ``MetaClip2Model``, ``SiglipModel``, ``Siglip2Model``, ``AltCLIPModel``,
  ``ChineseCLIPModel``, ``AlignModel``, ``BlipForImageTextRetrieval`` / ``BlipModel``,
  ``ClapModel`` (one route; each family's quirks in its own ``hf_*`` module);
* :mod:`captum_bilinear.adapters.open_clip` -- open_clip ``CLIP``, ``CustomTextCLIP``,
  ViT and ResNet image towers (``pip install captum-bilinear[open-clip]``);
* :mod:`captum_bilinear.adapters.sentence_transformers` -- ``SentenceTransformer``
  (``pip install captum-bilinear[sentence-transformers]``).

Models are recognised by their classes' modules, so none of the optional libraries is
imported unless the model comes from it. Every method takes such a model directly
(``BilinearIntegratedInteractions(model, layer)``) through :func:`as_dual_encoder`.
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
        TypeError: model: expected a transformers dual encoder (CLIPModel, ...
    """
    for _, accepts, wrap in ADAPTERS:
        if accepts(model):
            return wrap(model, image_mean=image_mean, image_std=image_std, processor=processor)
    raise TypeError(
        "model: expected a transformers dual encoder (" + ", ".join(hf.SUPPORTED_CLASSES) + "), an open_clip CLIP model "
        "(pip install captum-bilinear[open-clip]), a sentence_transformers SentenceTransformer, or a "
        f"captum_bilinear.DualEncoder wrapping two encoders; got {type(model).__name__}"
    )


def as_dual_encoder(
    model: Any,
    image_mean: Optional[Sequence[float]] = None,
    image_std: Optional[Sequence[float]] = None,
    processor: Any = None,
) -> DualEncoder:
    """The model as a :class:`DualEncoder` (a :class:`DualEncoder` is returned as it is).

    Supported (see each adapter module for its inputs and default references):

    * HuggingFace dual encoders (:mod:`captum_bilinear.adapters.hf`): side a the text
      (``input_ids``, extra arguments starting with ``attention_mask``), side b the
      image (``pixel_values``; SigLIP-2: its patches with ``(pixel_attention_mask,
      spatial_shapes)``) or, for CLAP, the audio (``input_features``), the cosine of the
      two embeddings.
    * open_clip ``CLIP`` / ``CustomTextCLIP`` (``open_clip.create_model``): side a
      open_clip's 77-token text, side b its preprocessed images.
    * sentence-transformers ``SentenceTransformer``: both sides ``input_ids`` with
      ``attention_mask`` as extra argument, the model's own pooling and similarity.

    Args:
        model: the model, loaded as usual.
        image_mean, image_std: pixel statistics for the black reference image; default
            those of the model (or of ``processor``, when given).
        processor: optional processor to read them from (a HF processor / image
            processor / feature extractor, or open_clip's ``preprocess`` transform).

    Example:
        >>> from transformers import CLIPConfig, CLIPModel
        >>> model = CLIPModel(CLIPConfig(
        ...     text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
        ...     vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        ...                        image_size=32, patch_size=8),
        ...     projection_dim=16))
        >>> as_dual_encoder(model).scale
        1.0
    """
    if isinstance(model, DualEncoder):
        return model
    return wrap_model(model, image_mean=image_mean, image_std=image_std, processor=processor)
