"""HuggingFace dual encoders, one route for all of them.

A model is wrapped by what it has: its ``get_text_features`` with its
``get_image_features`` or ``get_audio_features`` (BLIP's retrieval model: its
contrastive ``text_proj`` / ``vision_proj`` heads), the cosine of the two embeddings as
similarity (scale 1, the logit scale left out). What differs between families -- where
the text is pooled, its special tokens and default reference, the image normalization
and default image (or audio) reference, SigLIP-2's patch masks -- lives in one small
module per family:

============================================  ===============================================
``CLIPModel``, ``MetaClip2Model``             :mod:`captum_bilinear.adapters.hf_clip`
``SiglipModel``                               :mod:`captum_bilinear.adapters.hf_siglip`
``Siglip2Model`` (NaFlex)                     :mod:`captum_bilinear.adapters.hf_siglip2`
``AltCLIPModel``                              :mod:`captum_bilinear.adapters.hf_altclip`
``ChineseCLIPModel``                          :mod:`captum_bilinear.adapters.hf_chinese_clip`
``AlignModel`` (EfficientNet images)          :mod:`captum_bilinear.adapters.hf_align`
``BlipForImageTextRetrieval``, ``BlipModel``  :mod:`captum_bilinear.adapters.hf_blip`
``ClapModel`` (text-audio)                    :mod:`captum_bilinear.adapters.hf_clap`
============================================  ===============================================

Side a is always the text (``input_ids``, its ``attention_mask`` the first additional
forward argument; captions padded on the right), side b the image (or audio). A layer
given for one side that belongs to the other tower is refused. Families that an
installed transformers lacks (SigLIP-2 and MetaCLIP 2 before 4.49 / 4.56) are simply
not there to be wrapped. Adding a family is one module with ``CLASSES``,
``sides(model, image_mean, image_std, processor)`` (the
:class:`~captum_bilinear.DualEncoder` arguments) and ``layer_lists(model)`` (its towers'
layers), listed in :data:`FAMILIES`.
"""

from types import ModuleType
from typing import Any, Optional, Sequence, Tuple

import torch  # noqa: F401  (the examples use it)
from torch import nn

from captum_bilinear.adapters import hf_align, hf_altclip, hf_blip, hf_chinese_clip, hf_clap, hf_clip, hf_siglip, hf_siglip2
from captum_bilinear.encoders import DualEncoder

#: The family modules, each with ``CLASSES`` (transformers class names) and ``sides``.
FAMILIES = (hf_clip, hf_siglip, hf_siglip2, hf_altclip, hf_chinese_clip, hf_align, hf_blip, hf_clap)
#: Every transformers class name some family wraps.
SUPPORTED_CLASSES = tuple(name for family in FAMILIES for name in family.CLASSES)


def family_of(model: Any) -> Optional[ModuleType]:
    """The family module of a transformers ``model`` (its class or a base class defined
    in transformers), or None.

    Example:
        >>> family_of(torch.nn.Linear(2, 2)) is None
        True
    """
    if not isinstance(model, nn.Module):
        return None
    for cls in type(model).__mro__:
        if cls.__module__.split(".")[0] != "transformers":
            continue
        for family in FAMILIES:
            if cls.__name__ in family.CLASSES:
                return family
    return None


def is_supported_hf_model(model: Any) -> bool:
    """Whether ``model`` is a HuggingFace model this adapter wraps (see the table above).

    Example:
        >>> is_supported_hf_model(torch.nn.Linear(2, 2))
        False
    """
    return family_of(model) is not None


def layer_lists(model: Any) -> Tuple[Any, Any]:
    """The text tower's and the image (or audio) tower's layer lists of a wrapped model:
    ``layer_lists(model)[0][k]`` and ``[1][k]`` are layers to attribute (ALIGN: its
    EfficientNet blocks; CLAP: its HTSAT stages).

    Example:
        >>> from transformers import CLIPConfig, CLIPModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = CLIPModel(CLIPConfig(text_config=small, vision_config=dict(small, image_size=32, patch_size=8)))
        >>> text, image = layer_lists(model)
        >>> type(text[-2]).__name__, type(image[-2]).__name__
        ('CLIPEncoderLayer', 'CLIPEncoderLayer')
    """
    family = family_of(model)
    if family is None:
        raise TypeError(f"model: a {type(model).__name__} is none of the HuggingFace dual encoders wrapped here "
                        f"({', '.join(SUPPORTED_CLASSES)})")
    return family.layer_lists(model)


def wrap(
    model: nn.Module,
    image_mean: Optional[Sequence[float]] = None,
    image_std: Optional[Sequence[float]] = None,
    processor: Any = None,
) -> DualEncoder:
    """A HuggingFace dual encoder as a :class:`DualEncoder`.

    Args:
        model: the model, loaded as usual with ``from_pretrained``.
        image_mean, image_std: pixel statistics for the black reference image; default
            those of ``processor`` when given, else the family's processor defaults.
        processor: optional processor (or image processor / feature extractor) to read
            them from; CLAP's feature extractor gives the silence reference.

    Example:
        >>> from transformers import CLIPConfig, CLIPModel
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = CLIPModel(CLIPConfig(text_config=small, vision_config=dict(small, image_size=32, patch_size=8)))
        >>> wrap(model).check_b((torch.zeros(1, 3, 64, 64),), None, ())
        Traceback (most recent call last):
        ...
        ValueError: inputs[1]: expected images of 32x32 pixels (the model's image size), got 64x64; ...
    """
    family = family_of(model)
    if family is None:
        raise TypeError(f"model: a {type(model).__name__} is none of the HuggingFace dual encoders wrapped here "
                        f"({', '.join(SUPPORTED_CLASSES)})")
    return DualEncoder(**family.sides(model, image_mean, image_std, processor), modules=[model])
