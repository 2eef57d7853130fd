"""The SigLIP-2 demo model: its inputs against transformers' own processor and model,
its loss against transformers' SigLIP loss, its training command, and the shipped model
(offline, held-out retrieval computed through the processor)."""

import json
import math
import os

import numpy as np
import pytest
import torch

from captum_bilinear.zoo import SceneGenerator, load_demo_model
from captum_bilinear.zoo.siglip2 import DEMO_SIGLIP2_DIR, siglip2_available

pytestmark = pytest.mark.skipif(not siglip2_available(), reason="transformers < 4.49 has no Siglip2Model (SigLIP-2)")


@pytest.fixture(scope="module")
def tokenizer():
    return load_demo_model()[1]


def small_siglip2(tokenizer, layers: int = 2):
    from transformers import Siglip2Model

    from captum_bilinear.zoo.siglip2 import siglip2_demo_config

    torch.manual_seed(0)
    config = siglip2_demo_config(len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id,
                                 tokenizer.eos_token_id, layers=layers, width=32, heads=2)
    return Siglip2Model(config).eval()


def test_patches_are_the_processors():
    from captum_bilinear.zoo.siglip2 import images_to_patches, make_siglip2_image_processor

    scenes = SceneGenerator(3).scenes(3)
    expected = make_siglip2_image_processor()(images=[s.image for s in scenes], return_tensors="pt")
    values, mask, shapes = images_to_patches([s.image for s in scenes])
    assert torch.allclose(values, expected["pixel_values"], atol=1e-6)
    assert torch.equal(mask.long(), expected["pixel_attention_mask"].long())
    assert torch.equal(shapes, expected["spatial_shapes"].long())


def test_left_padded_captions_are_encoded_as_each_alone(tokenizer):
    """The text model pools its last position: left padding with position ids from each
    caption's first token gives every caption's unpadded embedding."""
    from captum_bilinear.zoo.siglip2 import encode_captions

    model = small_siglip2(tokenizer)
    captions = ["a red circle", "there is a big blue square left of a small green star"]
    batch = encode_captions(tokenizer, captions)
    assert batch["input_ids"].shape[1] > len(tokenizer(captions[0])["input_ids"])  # the first one is padded
    with torch.no_grad():
        together = model.get_text_features(**batch)
        together = getattr(together, "pooler_output", together)
        for row, caption in enumerate(captions):
            alone = model.get_text_features(input_ids=tokenizer(caption, return_tensors="pt")["input_ids"])
            alone = getattr(alone, "pooler_output", alone)
            assert torch.allclose(together[row], alone[0], atol=1e-5)


def test_sigmoid_loss_is_transformers_siglip_loss(tokenizer):
    """Without extra negatives or left-out pairs the loss is the one Siglip2Model.forward
    computes with return_loss=True (transformers' implementation of Zhai et al.)."""
    from captum_bilinear.zoo.siglip2 import siglip2_scene_inputs
    from captum_bilinear.zoo.train import sigmoid_loss

    model = small_siglip2(tokenizer)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-3.0)
    scenes = SceneGenerator(5).scenes(4)
    batch = siglip2_scene_inputs(scenes, tokenizer)
    with torch.no_grad():
        output = model(return_loss=True, **batch)
        ours, _ = sigmoid_loss(output.text_embeds, output.image_embeds, model.logit_scale, model.logit_bias,
                               torch.zeros(4, 4, dtype=torch.bool))
    assert float(ours) == pytest.approx(float(output.loss), rel=1e-5)


def test_bias_starts_at_the_prior():
    from captum_bilinear.zoo.train import siglip_bias_init

    # 128 images, 64 hard-negative captions: each image is scored against 192 captions
    assert siglip_bias_init(128, 0.5) == pytest.approx(-math.log(191))


def test_training_command_writes_a_loadable_model(tmp_path):
    from transformers import Siglip2Model

    from captum_bilinear.zoo.siglip2 import load_demo_siglip2
    from captum_bilinear.zoo.train import main

    out = tmp_path / "siglip2"
    main(["--family", "siglip2", "--out", str(out), "--steps", "2", "--batch", "4", "--layers", "1", "--width", "32",
          "--heads", "2", "--warmup", "1", "--log-every", "1", "--eval-every", "2", "--threads", "1"])
    settings = json.loads((out / "training_settings.json").read_text())
    assert settings["architecture"]["class"] == "Siglip2Model" and settings["architecture"]["image_positions"] == 64
    assert settings["steps"] == 2 and "sigmoid" in settings["loss"] and "final_logit_bias" in settings
    model, tokenizer, processor = load_demo_siglip2(str(out))
    assert isinstance(model, Siglip2Model) and processor.max_num_patches == 64
    assert tokenizer.pad_token_id == load_demo_model()[1].pad_token_id  # the demo CLIP's tokenizer
# ----------------------------------------------------------------------- the shipped model


@pytest.fixture(scope="module")
def shipped():
    from captum_bilinear.zoo.siglip2 import load_demo_siglip2

    return load_demo_siglip2()


def test_shipped_model_loads_offline_in_eval_mode(shipped):
    model, tokenizer, processor = shipped
    assert type(model).__name__ == "Siglip2Model" and not any(m.training for m in model.modules())
    assert os.path.getsize(os.path.join(DEMO_SIGLIP2_DIR, "model.safetensors")) < 12e6
    assert processor.max_num_patches == 64 and processor.patch_size == 8


def test_shipped_retrieval_through_the_processor(shipped):
    """Held-out retrieval recomputed the plain way (processor patches, every caption
    encoded alone, no padding) equals the recorded one, and is far above chance."""
    from captum_bilinear.zoo import HELD_OUT_SEED
    from captum_bilinear.zoo.siglip2 import siglip2_settings

    model, tokenizer, processor = shipped
    scenes = SceneGenerator(HELD_OUT_SEED, mode="full").scenes(32)
    with torch.no_grad():
        images = model.get_image_features(**processor(images=[s.image for s in scenes], return_tensors="pt"))
        images = torch.nn.functional.normalize(getattr(images, "pooler_output", images), dim=-1)
        texts = []
        for scene in scenes:
            text = model.get_text_features(input_ids=tokenizer(scene.caption, return_tensors="pt")["input_ids"])
            texts.append(torch.nn.functional.normalize(getattr(text, "pooler_output", text), dim=-1)[0])
    top1 = float((torch.stack(texts) @ images.T).argmax(1).eq(torch.arange(32)).float().mean())
    settings = siglip2_settings()
    assert top1 == pytest.approx(settings["retrieval_top1_32"], abs=1e-9)
    assert top1 > 10 / 32
    assert settings["default_layer"] == "embeddings" or isinstance(settings["default_layer"], int)
    assert np.isfinite(settings["final_loss"])
