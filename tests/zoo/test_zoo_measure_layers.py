"""The per-layer measurement of the demo model includes the embeddings layers, and a
default layer of "embeddings" is written and read back."""

import os
import shutil

import pytest

from captum_bilinear.zoo import DEMO_MODEL_DIR, default_layers, demo_settings, load_demo_model
from captum_bilinear.zoo.measure_layers import choose_layer, main


@pytest.fixture(scope="module")
def model():
    return load_demo_model()[0]


def test_default_layers_take_embeddings_and_indices(model):
    assert default_layers(model, "embeddings") == (model.text_model.embeddings, model.vision_model.embeddings)
    assert default_layers(model, "Embeddings")[1] is model.vision_model.embeddings
    assert default_layers(model, -1) == (model.text_model.encoder.layers[5], model.vision_model.encoder.layers[5])
    with pytest.raises(ValueError, match="6 encoder layers, got 6"):
        default_layers(model, 6)
    with pytest.raises(ValueError, match="'embeddings'"):
        default_layers(model, "embedding")


def test_choose_layer_can_choose_the_embeddings():
    table = {"embeddings": {"pga": 0.8, "pge": 0.5}, 3: {"pga": 0.6, "pge": 0.6}, 0: {"pga": 0.8, "pge": 0.4}}
    assert choose_layer(table) == "embeddings"


def test_write_stores_every_layer_and_a_loadable_default(tmp_path, model):
    shipped = os.path.join(DEMO_MODEL_DIR, "training_settings.json")
    with open(shipped) as handle:
        before = handle.read()
    directory = tmp_path / "model"
    shutil.copytree(DEMO_MODEL_DIR, directory)
    report = main(["--model", str(directory), "--scenes", "1", "--n-steps", "2", "--write"])
    settings = demo_settings(str(directory))
    assert list(settings["pointing_game"]["per_layer"]) == ["embeddings", "0", "1", "2", "3", "4", "5"]
    assert settings["default_layer"] == report["default_layer"]
    assert len(default_layers(model, settings["default_layer"])) == 2
    with open(shipped) as handle:  # the shipped file is untouched
        assert handle.read() == before


def test_siglip2_measurement_is_bii_on_its_processors_patches():
    """The per-layer measurement of the SigLIP-2 demo model (NaFlex patches, no CLS) gives
    the pointing game of BII called here on its processor's patches and masks."""
    from captum_bilinear import BilinearIntegratedInteractions
    from captum_bilinear.metrics import pointing_game
    from captum_bilinear.selection import span_image_map
    from captum_bilinear.zoo import SceneGenerator
    from captum_bilinear.zoo.measure_layers import load_measured_model, measure
    from captum_bilinear.zoo.siglip2 import siglip2_available

    if not siglip2_available():
        pytest.skip("transformers < 4.49 has no Siglip2Model: the SigLIP-2 demo model is skipped")
    siglip2, tokenizer, processor, _ = load_measured_model("demo-siglip2")
    scene = SceneGenerator(11, mode="full").scene(0)
    table = measure(siglip2, tokenizer, processor, [scene], [2], n_steps=2)
    images = processor(images=scene.pil(), return_tensors="pt")
    text = tokenizer(scene.caption, return_tensors="pt")
    A = BilinearIntegratedInteractions(siglip2, default_layers(siglip2, 2)).attribute(
        (text["input_ids"], images["pixel_values"]), n_steps=2,
        additional_forward_args=((text["attention_mask"],), (images["pixel_attention_mask"], images["spatial_shapes"])))
    results = [pointing_game(span_image_map(A[0], o.span, (8, 8), has_cls=False), o.box, (64, 64)) for o in scene.objects]
    assert table[2]["pga"] == pytest.approx(sum(r.hit for r in results) / len(results))
    assert table[2]["pge"] == pytest.approx(sum(r.energy for r in results) / len(results), abs=1e-6)
