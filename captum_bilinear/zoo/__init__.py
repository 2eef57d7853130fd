"""The bundled demo world: generated scenes of coloured shapes, their captions, and a
small CLIP model trained on them (shipped in ``demo_model/``, loaded offline).

Every named object of a scene comes with its pixel box and the token span of its
words in the tokenized caption, so second-order attributions can be checked against
ground truth (pointing game, hard negatives, retrieval).

The model is a ``transformers.CLIPModel`` (6 layers, width 128, 64 x 64 images in
8 x 8-pixel patches, 2.5 M parameters) with a fast CLIP tokenizer on its own vocabulary,
trained contrastively by ``python -m captum_bilinear.zoo.train`` (2,400 steps of batch
128; every setting in :func:`demo_settings`). Held-out caption -> image top-1 retrieval
among 32 scenes whose captions name every object: 93.8 % (93.4 % over 8 galleries).

Example:
    >>> from captum_bilinear.zoo import generate_scene, load_demo_model, scene_inputs
    >>> model, tokenizer, processor = load_demo_model()
    >>> scene = generate_scene(0, mode="full")
    >>> batch = scene_inputs(scene, tokenizer, processor)
    >>> start, stop = scene.objects[0].span
    >>> tokenizer.convert_ids_to_tokens(batch["input_ids"][0, start:stop].tolist()) == [
    ...     w + "</w>" for w in scene.objects[0].words]
    True
"""

from captum_bilinear.zoo.demo import (
    DEMO_MODEL_DIR,
    HELD_OUT_SEED,
    default_layers,
    demo_config,
    demo_settings,
    images_to_pixel_values,
    load_demo_model,
    make_image_processor,
    retrieval_top1,
    scene_inputs,
    similarity_matrix,
)
from captum_bilinear.zoo.scenes import (
    COLOURS,
    SHAPES,
    SIZES,
    VOCABULARY,
    Scene,
    SceneGenerator,
    SceneObject,
    caption_fits,
    generate_scene,
    hard_negative,
    words_to_caption,
)
from captum_bilinear.zoo.tokenizer import build_vocabulary, write_tokenizer_files

__all__ = [
    "COLOURS",
    "DEMO_MODEL_DIR",
    "HELD_OUT_SEED",
    "SHAPES",
    "SIZES",
    "VOCABULARY",
    "Scene",
    "SceneGenerator",
    "SceneObject",
    "build_vocabulary",
    "caption_fits",
    "default_layers",
    "demo_config",
    "demo_settings",
    "generate_scene",
    "hard_negative",
    "images_to_pixel_values",
    "load_demo_model",
    "make_image_processor",
    "retrieval_top1",
    "scene_inputs",
    "similarity_matrix",
    "words_to_caption",
    "write_tokenizer_files",
]
