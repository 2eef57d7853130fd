"""The second bundled demo model: a SigLIP-2 architecture (``transformers.Siglip2Model``)
trained with SigLIP's sigmoid loss on the same generated world and with the same
tokenizer as the demo CLIP (``python -m captum_bilinear.zoo.train --family siglip2``).

What differs from the demo CLIP, as in the real families: no CLS token (the image is
pooled by an attention head over the 64 patches), NaFlex image inputs -- ``pixel_values``
``(batch, patches, 3 * 8 * 8)`` flattened patches with ``pixel_attention_mask`` and
``spatial_shapes`` -- SigLIP's pixel statistics (mean = std = 0.5), a bidirectional text
encoder that pools its *last* position, and a sigmoid loss with a learned bias.

The text model reads ``[BOS] words [EOS]`` and pools the last position, which is the EOS
of an unpadded caption (what the evaluation and ``explain`` feed it). Batches of captions
are therefore padded on the *left*, with ``position_ids`` counted from each caption's
first token (:func:`encode_captions`), so that every caption is encoded exactly as alone.
Right-padded batches would pool a padding position: pass captions one at a time, or
left-padded with their ``position_ids`` as here.

Requires transformers >= 4.49 (``Siglip2Model``); the 4.45 that the package also supports
lacks it (:func:`siglip2_available`).
"""

import contextlib
import os
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch

from captum_bilinear.references import SIGLIP_IMAGE_MEAN, SIGLIP_IMAGE_STD
from captum_bilinear.zoo.demo import HELD_OUT_SEED, SETTINGS_FILE
from captum_bilinear.zoo.scenes import Scene, SceneGenerator

#: Folder of the shipped SigLIP-2 demo model.
DEMO_SIGLIP2_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_siglip2")
#: Pixel statistics of the SigLIP-2 demo processor: SigLIP's.
IMAGE_MEAN, IMAGE_STD = SIGLIP_IMAGE_MEAN, SIGLIP_IMAGE_STD


def siglip2_available() -> bool:
    """Whether the installed transformers has ``Siglip2Model`` (4.49 and later).

    Example:
        >>> isinstance(siglip2_available(), bool)
        True
    """
    import transformers

    return hasattr(transformers, "Siglip2Model")


def _require_siglip2() -> None:
    if not siglip2_available():
        import transformers

        raise ImportError(
            f"the SigLIP-2 demo model needs transformers >= 4.49 (Siglip2Model); this is transformers "
            f"{transformers.__version__}"
        )


def siglip2_demo_config(
    vocab_size: int,
    pad_token_id: int,
    bos_token_id: int,
    eos_token_id: int,
    layers: int = 6,
    width: int = 128,
    heads: int = 4,
    image_size: int = 64,
    patch_size: int = 8,
    max_length: int = 32,
):
    """The ``transformers.Siglip2Config`` of the SigLIP-2 demo architecture: both encoders
    ``layers`` deep and ``width`` wide (MLP ``4 * width``), a position grid of
    ``(image_size // patch_size) ** 2`` patches, the joint embedding ``width`` wide.

    Args:
        vocab_size, pad_token_id, bos_token_id, eos_token_id: from the tokenizer.
        layers, width, heads: depth, hidden size and attention heads of both encoders.
        image_size, patch_size: image side and patch side in pixels.
        max_length: maximum caption length in tokens.

    Returns:
        A ``Siglip2Config``.

    Example:
        >>> if siglip2_available():
        ...     config = siglip2_demo_config(635, 632, 633, 634, layers=2)
        ...     print(config.vision_config.num_patches, config.text_config.projection_size)
        ... else:
        ...     print(64, 128)
        64 128
    """
    _require_siglip2()
    from transformers import Siglip2Config

    common = dict(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers, num_attention_heads=heads)
    text = dict(
        common,
        vocab_size=vocab_size,
        max_position_embeddings=max_length,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        projection_size=width,
    )
    vision = dict(common, patch_size=patch_size, num_patches=(image_size // patch_size) ** 2, num_channels=3)
    return Siglip2Config(text_config=text, vision_config=vision)


def make_siglip2_image_processor(image_size: int = 64, patch_size: int = 8):
    """The SigLIP-2 demo's NaFlex image processor: an image of ``image_size`` pixels
    becomes ``(image_size // patch_size) ** 2`` patches, unresized.

    Returns:
        A ``Siglip2ImageProcessor`` (its PIL variant when torchvision is missing) with
        SigLIP's mean / std.

    Example:
        >>> import numpy as np
        >>> if siglip2_available():
        ...     out = make_siglip2_image_processor()(images=[np.zeros((64, 64, 3), np.uint8)], return_tensors="pt")
        ...     print(tuple(out["pixel_values"].shape), out["spatial_shapes"].tolist())
        ... else:
        ...     print((1, 64, 192), [[8, 8]])
        (1, 64, 192) [[8, 8]]
    """
    cls = _image_processor_class()
    return cls(
        do_resize=True,
        do_rescale=True,
        do_normalize=True,
        image_mean=list(IMAGE_MEAN),
        image_std=list(IMAGE_STD),
        do_convert_rgb=True,
        patch_size=patch_size,
        max_num_patches=(image_size // patch_size) ** 2,
    )


def _image_processor_class():
    _require_siglip2()
    try:
        import torchvision  # noqa: F401
    except ImportError:
        try:
            from transformers import Siglip2ImageProcessorPil

            return Siglip2ImageProcessorPil
        except ImportError:
            pass
    from transformers import Siglip2ImageProcessor

    return Siglip2ImageProcessor


def images_to_patches(
    images: Sequence[np.ndarray], patch_size: int = 8
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """NaFlex inputs of ``(H, W, 3)`` uint8 images whose sides are multiples of
    ``patch_size`` (what the demo processor computes for them, without resizing; faster).

    Returns:
        ``(pixel_values, pixel_attention_mask, spatial_shapes)``: ``(batch, patches,
        patch_size * patch_size * 3)`` float32 (each patch row-major, channels last, as
        ``Siglip2ImageProcessor``), ``(batch, patches)`` ones, ``(batch, 2)`` patch rows
        and columns.

    Example:
        >>> values, mask, shapes = images_to_patches([np.zeros((64, 64, 3), np.uint8)])
        >>> tuple(values.shape), shapes.tolist(), float(values[0, 0, 0])
        ((1, 64, 192), [[8, 8]], -1.0)
    """
    from captum_bilinear.images import image_to_patches

    array = np.stack([np.asarray(image) for image in images]).astype(np.float32) / 255.0
    pixels = torch.from_numpy(array).permute(0, 3, 1, 2)  # (batch, 3, H, W)
    mean = torch.tensor(IMAGE_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return image_to_patches((pixels - mean) / std, patch_size)


def encode_captions(tokenizer, captions: Sequence[str]) -> Dict[str, torch.Tensor]:
    """A batch of captions for the SigLIP-2 demo text model: padded on the left, with
    ``position_ids`` that start at each caption's first token, so that each row is
    encoded as the caption alone (the model pools the last position, the EOS).

    Returns:
        ``{"input_ids", "attention_mask", "position_ids"}``, each ``(captions, length)``.

    Example:
        >>> from captum_bilinear.zoo import load_demo_model
        >>> _, tokenizer, _ = load_demo_model()
        >>> batch = encode_captions(tokenizer, ["a red circle", "a big red circle on the left"])
        >>> batch["input_ids"][0, -1] == tokenizer.eos_token_id, batch["position_ids"][0].tolist()[-5:]
        (tensor(True), [0, 1, 2, 3, 4])
    """
    ids = [tokenizer(c)["input_ids"] for c in captions]
    length = max(len(i) for i in ids)
    input_ids = torch.full((len(ids), length), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), length), dtype=torch.long)
    position_ids = torch.zeros((len(ids), length), dtype=torch.long)
    for row, tokens in enumerate(ids):
        n = len(tokens)
        input_ids[row, length - n :] = torch.tensor(tokens)
        attention_mask[row, length - n :] = 1
        position_ids[row, length - n :] = torch.arange(n)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}


def siglip2_scene_inputs(scenes: Sequence[Scene], tokenizer, patch_size: int = 8) -> Dict[str, torch.Tensor]:
    """Text and NaFlex image inputs of a list of scenes for the SigLIP-2 demo model
    (:func:`encode_captions` and :func:`images_to_patches`).

    Example:
        >>> from captum_bilinear.zoo import SceneGenerator, load_demo_model
        >>> _, tokenizer, _ = load_demo_model()
        >>> sorted(siglip2_scene_inputs(SceneGenerator(1).scenes(2), tokenizer))  # doctest: +NORMALIZE_WHITESPACE
        ['attention_mask', 'input_ids', 'pixel_attention_mask', 'pixel_values', 'position_ids', 'spatial_shapes']
    """
    scenes = list(scenes)
    batch = encode_captions(tokenizer, [s.caption for s in scenes])
    values, mask, shapes = images_to_patches([s.image for s in scenes], patch_size)
    batch.update(pixel_values=values, pixel_attention_mask=mask, spatial_shapes=shapes)
    return batch


def _pooled(output: Any) -> torch.Tensor:
    return getattr(output, "pooler_output", output)


@torch.no_grad()
def siglip2_similarity_matrix(model, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Cosine similarities ``(captions, images)`` of a :func:`siglip2_scene_inputs` batch.

    Example:
        >>> if siglip2_available():
        ...     from captum_bilinear.zoo import SceneGenerator
        ...     model, tokenizer, _ = load_demo_siglip2()
        ...     print(siglip2_similarity_matrix(model, siglip2_scene_inputs(SceneGenerator(1).scenes(3), tokenizer)).shape)
        ... else:
        ...     print("torch.Size([3, 3])")
        torch.Size([3, 3])
    """
    text = _pooled(model.get_text_features(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]))
    image = _pooled(model.get_image_features(
        pixel_values=batch["pixel_values"], pixel_attention_mask=batch["pixel_attention_mask"],
        spatial_shapes=batch["spatial_shapes"]))
    text = torch.nn.functional.normalize(text, dim=-1)
    image = torch.nn.functional.normalize(image, dim=-1)
    return text @ image.T


def siglip2_retrieval_top1(
    model, tokenizer, n_scenes: int = 32, seed: int = HELD_OUT_SEED, n_sets: int = 1, image_size: int = 64
) -> float:
    """Caption -> image top-1 retrieval on held-out full-caption scenes, as
    :func:`~captum_bilinear.zoo.retrieval_top1` for the demo CLIP.

    Example:
        >>> if siglip2_available():
        ...     model, tokenizer, _ = load_demo_siglip2()
        ...     print(siglip2_retrieval_top1(model, tokenizer, n_scenes=8) > 0.5)
        ... else:
        ...     print(True)
        True
    """
    was_training = model.training
    model.eval()
    patch_size = model.config.vision_config.patch_size
    generator = SceneGenerator(seed, mode="full", image_size=image_size)
    correct = 0
    try:
        for k in range(n_sets):
            scenes = generator.scenes(n_scenes, start=k * n_scenes)
            sims = siglip2_similarity_matrix(model, siglip2_scene_inputs(scenes, tokenizer, patch_size))
            correct += int((sims.argmax(dim=1) == torch.arange(n_scenes)).sum())
    finally:
        model.train(was_training)
    return correct / (n_scenes * n_sets)


@contextlib.contextmanager
def _default_config_warning_hidden() -> Iterator[None]:
    """transformers' *default* ``Siglip2TextConfig`` (vocabulary 32000, BOS 49406), which
    it builds beside the model's own while loading, fails its own token-id check and logs
    "bos_token_id must be ... within the vocabulary ... got 49406" -- about ids this
    model does not have. Only that logger is quieted, only while loading."""
    import logging

    config_logger = logging.getLogger("transformers.configuration_utils")
    level = config_logger.level
    config_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        config_logger.setLevel(level)


def load_demo_siglip2(directory: Optional[str] = None):
    """Load the bundled SigLIP-2 demo model, its tokenizer (the demo CLIP's) and its
    NaFlex image processor, with the usual ``from_pretrained`` (no network).

    Args:
        directory: model folder (default: the shipped :data:`DEMO_SIGLIP2_DIR`).

    Returns:
        ``(model, tokenizer, processor)``: a ``transformers.Siglip2Model`` in eval mode,
        a fast CLIP tokenizer, a ``Siglip2ImageProcessor``.

    Raises:
        ImportError: transformers older than 4.49 (no ``Siglip2Model``).

    Example:
        >>> if siglip2_available():
        ...     model, tokenizer, processor = load_demo_siglip2()
        ...     print(type(model).__name__, model.training, processor.max_num_patches)
        ... else:
        ...     print("Siglip2Model False 64")
        Siglip2Model False 64
    """
    _require_siglip2()
    from transformers import CLIPTokenizerFast, Siglip2Model  # type: ignore[attr-defined]  # a lazy alias in transformers 5, absent from its type stubs

    directory = directory or DEMO_SIGLIP2_DIR
    with _default_config_warning_hidden():
        model = Siglip2Model.from_pretrained(directory)
    model.eval()
    tokenizer = CLIPTokenizerFast.from_pretrained(directory)
    processor = _image_processor_class().from_pretrained(directory)
    return model, tokenizer, processor


def siglip2_settings(directory: Optional[str] = None) -> Dict[str, Any]:
    """The training settings and measurements recorded with the SigLIP-2 demo model.

    Example:
        >>> siglip2_settings()["architecture"]["class"]
        'Siglip2Model'
    """
    import json

    with open(os.path.join(directory or DEMO_SIGLIP2_DIR, SETTINGS_FILE), encoding="utf-8") as f:
        return json.load(f)
