"""The bundled demo model: building its config, loading it, feeding it scenes, and
measuring its caption -> image retrieval."""

import json
import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from captum_bilinear.references import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD
from captum_bilinear.zoo.scenes import Scene, SceneGenerator

#: Folder of the shipped demo model (weights, configs, tokenizer, training settings).
DEMO_MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_model")
#: Name of the training-settings file written next to the weights.
SETTINGS_FILE = "training_settings.json"
#: Seed of the held-out scenes used by the evaluation helpers (training uses seed 0).
HELD_OUT_SEED = 12345

#: Pixel statistics of the demo processor: OpenAI CLIP's, so that the attribution
#: methods' default black reference image (which assumes them) is exactly black.
IMAGE_MEAN, IMAGE_STD = CLIP_IMAGE_MEAN, CLIP_IMAGE_STD


def demo_config(
    vocab_size: int,
    pad_token_id: int,
    bos_token_id: int,
    eos_token_id: int,
    layers: int = 6,
    width: int = 128,
    heads: int = 4,
    image_size: int = 64,
    patch_size: int = 8,
    projection_dim: int = 128,
    max_length: int = 32,
):
    """The ``transformers.CLIPConfig`` of the demo model architecture.

    Args:
        vocab_size, pad_token_id, bos_token_id, eos_token_id: from the tokenizer.
        layers, width, heads: depth, hidden size and attention heads of both encoders
            (MLP width ``4 * width``).
        image_size, patch_size: image side and patch side in pixels.
        projection_dim: size of the joint embedding.
        max_length: maximum caption length in tokens.

    Returns:
        A ``CLIPConfig``.

    Example:
        >>> config = demo_config(vocab_size=635, pad_token_id=632, bos_token_id=633, eos_token_id=634, layers=2)
        >>> config.vision_config.num_hidden_layers, config.text_config.pad_token_id
        (2, 632)
    """
    from transformers import CLIPConfig

    common = dict(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers, num_attention_heads=heads)
    text = dict(
        common,
        vocab_size=vocab_size,
        max_position_embeddings=max_length,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
    )
    vision = dict(common, image_size=image_size, patch_size=patch_size)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)


def make_image_processor(image_size: int = 64):
    """The demo's ``CLIPImageProcessor``: an image of ``image_size`` pixels passes
    unchanged (resize / crop are no-ops), other sizes are resized and centre-cropped.

    Args:
        image_size: the model's image side in pixels.

    Returns:
        A ``CLIPImageProcessor`` (its PIL variant when torchvision is missing) with
        OpenAI CLIP's mean / std.

    Example:
        >>> import numpy as np
        >>> processor = make_image_processor(64)
        >>> processor(images=[np.zeros((64, 64, 3), np.uint8)], return_tensors="pt")["pixel_values"].shape
        torch.Size([1, 3, 64, 64])
    """
    cls = _image_processor_class()
    return cls(
        do_resize=True,
        size={"shortest_edge": image_size},
        do_center_crop=True,
        crop_size={"height": image_size, "width": image_size},
        do_rescale=True,
        do_normalize=True,
        image_mean=list(IMAGE_MEAN),
        image_std=list(IMAGE_STD),
        do_convert_rgb=True,
    )


def _image_processor_class():
    """``CLIPImageProcessor``; its PIL variant when torchvision is missing (transformers
    5.x falls back to it anyway, with a warning)."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        try:
            from transformers import CLIPImageProcessorPil

            return CLIPImageProcessorPil
        except ImportError:
            pass
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor


def demo_settings(directory: Optional[str] = None) -> Dict[str, Any]:
    """The training settings and measurements recorded with the demo model.

    Args:
        directory: model folder (default: the shipped :data:`DEMO_MODEL_DIR`).

    Returns:
        The parsed ``training_settings.json`` (seed, steps, batch, learning rate, wall
        time, final retrieval, per-layer pointing game, ``default_layer``, ...).

    Example:
        >>> settings = demo_settings()
        >>> isinstance(settings["default_layer"], int) or settings["default_layer"] == "embeddings"
        True
    """
    with open(os.path.join(directory or DEMO_MODEL_DIR, SETTINGS_FILE), encoding="utf-8") as f:
        return json.load(f)


def load_demo_model(directory: Optional[str] = None):
    """Load the bundled demo CLIP model, its tokenizer and its image processor.

    Everything is read with the usual ``from_pretrained`` from the package's
    ``demo_model`` folder (no network).

    Args:
        directory: model folder (default: the shipped :data:`DEMO_MODEL_DIR`).

    Returns:
        ``(model, tokenizer, processor)``: a ``transformers.CLIPModel`` in eval mode, a
        fast CLIP tokenizer and a ``CLIPImageProcessor``. The layer index the attributions
        point best at is ``demo_settings()["default_layer"]``; :func:`default_layers`
        returns that layer pair of the model.

    Example:
        >>> model, tokenizer, processor = load_demo_model()
        >>> model.training
        False
        >>> tokenizer("a red circle")["input_ids"][0] == tokenizer.bos_token_id
        True
    """
    from transformers import CLIPModel, CLIPTokenizerFast  # type: ignore[attr-defined]  # a lazy alias in transformers 5, absent from its type stubs

    directory = directory or DEMO_MODEL_DIR
    model = CLIPModel.from_pretrained(directory)
    model.eval()
    tokenizer = CLIPTokenizerFast.from_pretrained(directory)  # offsets for caption spans (4.x: not CLIPTokenizer)
    processor = _image_processor_class().from_pretrained(directory)
    return model, tokenizer, processor


def default_layers(model, index: Optional[Union[int, str]] = None) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """The ``(text layer, vision layer)`` pair to attribute, for a method such as
    ``BilinearIntegratedInteractions(model, default_layers(model))``.

    Args:
        model: the demo ``CLIPModel`` (or any ``CLIPModel`` / ``SiglipModel``).
        index: an encoder layer index, or ``"embeddings"`` for the embeddings layers
            (token + position embeddings; patch + position embeddings); default: the
            shipped ``default_layer`` (see ``demo_settings()["pointing_game"]``).

    Returns:
        ``(model.text_model.encoder.layers[index], model.vision_model.encoder.layers[index])``,
        or ``(model.text_model.embeddings, model.vision_model.embeddings)``.

    Example:
        >>> model, _, _ = load_demo_model()
        >>> text_layer, vision_layer = default_layers(model)  # the measured default: the embeddings
        >>> type(vision_layer).__name__
        'CLIPVisionEmbeddings'
        >>> type(default_layers(model, 3)[1]).__name__
        'CLIPEncoderLayer'
    """
    if index is None:
        index = demo_settings().get("default_layer", -2)
    if isinstance(index, str) and index.lower() == "embeddings":
        return model.text_model.embeddings, model.vision_model.embeddings
    if isinstance(index, bool) or not isinstance(index, (int, str)):
        raise TypeError(f"index: expected an encoder layer index or 'embeddings', got {index!r}")
    try:
        index = int(index)
    except ValueError:
        raise ValueError(f"index: expected an encoder layer index or 'embeddings', got {index!r}") from None
    layers = model.vision_model.encoder.layers
    if not -len(layers) <= index < len(layers):
        raise ValueError(f"index: the model has {len(layers)} encoder layers, got {index}")
    return model.text_model.encoder.layers[index], layers[index]


def images_to_pixel_values(
    images: Sequence[np.ndarray], mean: Sequence[float] = IMAGE_MEAN, std: Sequence[float] = IMAGE_STD
) -> torch.Tensor:
    """Normalize ``(H, W, 3)`` uint8 images of the model's size into ``pixel_values``
    (what the demo processor computes for them, without resizing; faster).

    Args:
        images: ``(H, W, 3)`` uint8 arrays (or PIL images) of the model's image size.
        mean, std: per-channel statistics (default: the demo processor's).

    Returns:
        ``(batch, 3, H, W)`` float32 tensor.

    Example:
        >>> import numpy as np
        >>> images_to_pixel_values([np.zeros((64, 64, 3), np.uint8)]).shape
        torch.Size([1, 3, 64, 64])
    """
    array = np.stack([np.asarray(image) for image in images]).astype(np.float32) / 255.0
    pixels = torch.from_numpy(array).permute(0, 3, 1, 2)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (pixels - mean_t) / std_t


def scene_inputs(
    scenes: Union[Scene, Sequence[Scene]],
    tokenizer,
    processor=None,
    captions: Optional[Sequence[str]] = None,
) -> Dict[str, torch.Tensor]:
    """Model inputs for one scene or a list of scenes.

    Args:
        scenes: a :class:`~captum_bilinear.zoo.scenes.Scene` or a sequence of them.
        tokenizer: the demo tokenizer.
        processor: the demo image processor (or a ``CLIPProcessor``); ``None``
            normalizes with the demo statistics directly.
        captions: texts to use instead of the scenes' captions (same count).

    Returns:
        ``{"input_ids", "attention_mask", "pixel_values"}``: captions padded to the
        longest with ``<|pad|>`` (the token spans of the scenes' objects index
        ``input_ids`` directly), images ``(batch, 3, H, W)``.

    Example:
        >>> from captum_bilinear.zoo import generate_scene, load_demo_model
        >>> model, tokenizer, processor = load_demo_model()
        >>> batch = scene_inputs(generate_scene(0), tokenizer, processor)
        >>> sorted(batch), batch["pixel_values"].shape[0]
        (['attention_mask', 'input_ids', 'pixel_values'], 1)
    """
    if isinstance(scenes, Scene):
        scenes = [scenes]
    scenes = list(scenes)
    texts = [s.caption for s in scenes] if captions is None else list(captions)
    if len(texts) != len(scenes):
        raise ValueError(f"captions: expected {len(scenes)} texts, got {len(texts)}")
    text = tokenizer(texts, padding=True, return_tensors="pt")
    if processor is None:
        pixel_values = images_to_pixel_values([s.image for s in scenes])
    else:
        image_processor = getattr(processor, "image_processor", processor)
        pixel_values = image_processor(images=[s.image for s in scenes], return_tensors="pt")["pixel_values"]
    return {"input_ids": text["input_ids"], "attention_mask": text["attention_mask"], "pixel_values": pixel_values}


@torch.no_grad()
def similarity_matrix(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor
) -> torch.Tensor:
    """Cosine similarities of every caption with every image.

    Args:
        model: a ``CLIPModel``.
        input_ids, attention_mask: ``(captions, length)`` tokenized captions.
        pixel_values: ``(images, 3, H, W)``.

    Returns:
        ``(captions, images)`` tensor of cosine similarities (no logit scale).

    Example:
        >>> from captum_bilinear.zoo import SceneGenerator, load_demo_model, scene_inputs
        >>> model, tokenizer, processor = load_demo_model()
        >>> batch = scene_inputs(SceneGenerator(1, mode="full").scenes(3), tokenizer, processor)
        >>> similarity_matrix(model, **batch).shape
        torch.Size([3, 3])
    """
    text = model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
    image = model.get_image_features(pixel_values=pixel_values)
    text = getattr(text, "pooler_output", text)
    image = getattr(image, "pooler_output", image)
    text = torch.nn.functional.normalize(text, dim=-1)
    image = torch.nn.functional.normalize(image, dim=-1)
    return text @ image.T


def retrieval_top1(
    model,
    tokenizer,
    processor=None,
    n_scenes: int = 32,
    seed: int = HELD_OUT_SEED,
    n_sets: int = 1,
) -> float:
    """Caption -> image top-1 retrieval accuracy on held-out scenes.

    Draws ``n_scenes`` scenes whose captions name every object (mode ``"full"``) from
    ``SceneGenerator(seed)`` and counts how often a caption's most similar image among
    the ``n_scenes`` images is its own.

    Args:
        model: a ``CLIPModel`` (e.g. from :func:`load_demo_model`).
        tokenizer, processor: the demo tokenizer and image processor.
        n_scenes: gallery size (chance level is ``1 / n_scenes``).
        seed: scene stream seed (the demo model was trained on seed 0).
        n_sets: average over this many disjoint galleries (scenes ``k * n_scenes`` on).

    Returns:
        The accuracy in [0, 1].

    Example:
        >>> model, tokenizer, processor = load_demo_model()
        >>> retrieval_top1(model, tokenizer, processor, n_scenes=8) > 0.5
        True
    """
    was_training = model.training
    model.eval()
    generator = SceneGenerator(seed, mode="full", image_size=model.config.vision_config.image_size)
    correct = 0
    try:
        for k in range(n_sets):
            scenes = generator.scenes(n_scenes, start=k * n_scenes)
            batch = scene_inputs(scenes, tokenizer, processor)
            sims = similarity_matrix(model, **batch)
            correct += int((sims.argmax(dim=1) == torch.arange(n_scenes)).sum())
    finally:
        model.train(was_training)
    return correct / (n_scenes * n_sets)
