"""The shipped demo model: files, loader, inputs, and held-out retrieval."""

import json
import os

import pytest
import torch

import captum_bilinear.zoo
from captum_bilinear.zoo import (
    DEMO_MODEL_DIR,
    SceneGenerator,
    default_layers,
    demo_settings,
    hard_negative,
    images_to_pixel_values,
    load_demo_model,
    retrieval_top1,
    scene_inputs,
    similarity_matrix,
)

FILES = [
    "config.json",
    "model.safetensors",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "training_settings.json",
]


@pytest.fixture(scope="module")
def demo_model():
    torch.manual_seed(0)
    return load_demo_model()


def test_package_ships_the_model_files():
    assert os.path.dirname(DEMO_MODEL_DIR) == os.path.dirname(captum_bilinear.zoo.__file__)
    for name in FILES:
        assert os.path.isfile(os.path.join(DEMO_MODEL_DIR, name)), name
    assert os.path.getsize(os.path.join(DEMO_MODEL_DIR, "model.safetensors")) <= 15 * 2**20
    settings = demo_settings()
    for key in ("seed", "steps", "batch", "optimizer", "train_seconds", "retrieval_top1_32", "default_layer"):
        assert key in settings, key


def test_loader_gives_an_eval_model_and_matching_processor(demo_model):
    model, tok, processor = demo_model
    assert type(model).__name__ == "CLIPModel" and not model.training
    assert not any(m.training for m in model.modules())
    vision = model.config.vision_config
    with open(os.path.join(DEMO_MODEL_DIR, "preprocessor_config.json")) as f:
        pre = json.load(f)
    assert pre["crop_size"] == {"height": vision.image_size, "width": vision.image_size}
    # the processor leaves images of the model's size unresized: same as plain normalization
    scene_list = SceneGenerator(1).scenes(3)
    from_processor = processor(images=[s.image for s in scene_list], return_tensors="pt")["pixel_values"]
    assert torch.allclose(from_processor, images_to_pixel_values([s.image for s in scene_list]), atol=1e-6)
    assert torch.allclose(from_processor, scene_inputs(scene_list, tok, None)["pixel_values"], atol=1e-6)
    text_layer, vision_layer = default_layers(model)
    k = demo_settings()["default_layer"]
    if k == "embeddings":
        assert text_layer is model.text_model.embeddings and vision_layer is model.vision_model.embeddings
    else:
        assert text_layer is model.text_model.encoder.layers[k] and vision_layer is model.vision_model.encoder.layers[k]
    # the default is the measured best layer
    table = demo_settings()["pointing_game"]["per_layer"]
    assert str(k) == max(table, key=lambda name: (table[name]["pga"], table[name]["pge"]))


def test_scene_inputs_shapes_and_spans(demo_model):
    model, tok, processor = demo_model
    scene_list = SceneGenerator(2, mode="full").scenes(4)
    batch = scene_inputs(scene_list, tok, processor)
    size = model.config.vision_config.image_size
    assert batch["pixel_values"].shape == (4, 3, size, size)
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    for row, scene in enumerate(scene_list):
        ids = batch["input_ids"][row]
        assert int(batch["attention_mask"][row].sum()) == len(scene.words) + 2
        for obj in scene.objects:
            assert tok.convert_ids_to_tokens(ids[obj.span[0] : obj.span[1]].tolist()) == [w + "</w>" for w in obj.words]
    with pytest.raises(ValueError):
        scene_inputs(scene_list, tok, processor, captions=["a red circle"])


def test_held_out_retrieval_is_far_above_chance(demo_model):
    model, tok, processor = demo_model
    # 64 held-out scenes in two galleries of 32 (chance: 1/32 ~ 0.03)
    accuracy = retrieval_top1(model, tok, processor, n_scenes=32, seed=777, n_sets=2)
    assert accuracy >= 0.6, accuracy


def test_true_captions_beat_hard_negatives(demo_model):
    model, tok, processor = demo_model
    scene_list = SceneGenerator(778, mode="full").scenes(48)
    negatives = [hard_negative(s, seed=i) for i, s in enumerate(scene_list)]
    true = scene_inputs(scene_list, tok, processor)
    false = scene_inputs(negatives, tok, processor)
    s_true = similarity_matrix(model, **true).diagonal()
    s_false = similarity_matrix(model, **false).diagonal()
    assert float((s_true > s_false).float().mean()) >= 0.75
