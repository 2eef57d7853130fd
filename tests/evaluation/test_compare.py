"""``evaluate --model A --model B``: the bundled models by name, one run per model with
today's layout, the comparison's numbers against its records, its figures' maps against
the runs' records, SigLIP-2's records against BII computed here from its processor's
NaFlex inputs, and what transformers 4.45 (no SigLIP-2) says."""

import json
import os

import numpy as np
import pytest
import torch

from captum_bilinear.cli import main
from captum_bilinear.evaluation.compare import check_models, model_label, paired_difference
from captum_bilinear.evaluation.records import complete_blocks
from captum_bilinear.loading import load_model
from captum_bilinear.zoo.siglip2 import siglip2_available

needs_siglip2 = pytest.mark.skipif(not siglip2_available(),
                                   reason="transformers < 4.49 has no Siglip2Model: the SigLIP-2 demo model is skipped")
COMMITTED = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "evaluation", "results.json")


def test_bundled_models_by_name():
    assert load_model("demo-clip").name == load_model(None).name == "bundled demo CLIP"
    assert load_model("demo-clip").default_layer == load_model(None).default_layer


@needs_siglip2
def test_demo_siglip2_loads_offline_with_its_measured_layer():
    from captum_bilinear.zoo.siglip2 import siglip2_settings

    loaded = load_model("demo-siglip2")
    assert type(loaded.model).__name__ == "Siglip2Model" and not loaded.model.training
    assert loaded.name == "bundled demo SigLIP-2" and loaded.default_layer == siglip2_settings()["default_layer"]
    assert loaded.tokenizer.pad_token_id == load_model().tokenizer.pad_token_id


def test_without_siglip2_the_demo_siglip2_is_refused_with_the_reason(monkeypatch, tmp_path, capsys):
    """What transformers 4.45 says (simulated here under 5.x; `make test-transformers4`
    runs it for real): the model is named, the version it needs too, before any run."""
    import captum_bilinear.zoo.siglip2 as siglip2

    monkeypatch.setattr(siglip2, "siglip2_available", lambda: False)
    with pytest.raises(ValueError, match=r"model: demo-siglip2 needs transformers >= 4.49 \(Siglip2Model\)"):
        load_model("demo-siglip2")
    code = main(["evaluate", "--model", "demo-clip", "--model", "demo-siglip2", "--scenes", "1", "--out",
                 str(tmp_path / "cmp"), "--no-progress"])
    assert code == 2 and "models: demo-siglip2 needs transformers >= 4.49" in capsys.readouterr().err
    assert not (tmp_path / "cmp" / "demo-clip").exists()  # refused before the first model's run


@needs_siglip2
@pytest.mark.parametrize("arguments, message", [
    (["--methods", "itsm"], "--methods: none of them can explain bundled demo SigLIP-2"),
])
def test_a_setting_the_second_model_cannot_take_is_refused_before_the_first_models_run(
        arguments, message, tmp_path, capsys):
    """``--model demo-clip --model demo-siglip2 --methods itsm`` ran the whole demo-clip
    evaluation, then stopped: ITSM cannot explain SigLIP-2 (no per-patch head)."""
    code = main(["evaluate", "--model", "demo-clip", "--model", "demo-siglip2", "--scenes", "1", "--out",
                 str(tmp_path / "cmp"), "--no-progress", "--completeness-examples", "0", *arguments])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not (tmp_path / "cmp" / "demo-clip").exists()


def test_models_are_checked_before_any_work():
    assert [model_label(m) for m in check_models([None, "org/model", "./runs/mine"])] == [
        "demo-clip", "org--model", "mine"]
    with pytest.raises(ValueError, match="at least two models"):
        check_models(["demo-clip"])
    with pytest.raises(ValueError, match=r"\['demo-clip'\] named more than once"):
        check_models([None, "demo-clip"])


def test_paired_difference_is_the_bootstrap_of_the_differences():
    """One object per pair: the interval is the percentile bootstrap of the mean
    difference, as scipy computes it (other random draws: agreement to sampling error)."""
    from scipy import stats

    rng = np.random.default_rng(0)
    first = rng.uniform(size=40)
    second = first + rng.normal(0.1, 0.2, size=40)
    result = paired_difference({(f"e{i}", 0): v for i, v in enumerate(first)},
                               {(f"e{i}", 0): v for i, v in enumerate(second)}, n_resamples=4000)
    expected = stats.bootstrap((second - first,), np.mean, n_resamples=4000, method="percentile",
                               random_state=1).confidence_interval
    assert result["difference"] == pytest.approx(float(np.mean(second - first)), abs=1e-12)
    assert result["ci95"] == pytest.approx([expected.low, expected.high], abs=0.015)
    assert result["n"] == result["examples"] == 40


def test_a_single_model_run_keeps_the_committed_layout(tmp_path):
    """One --model: results.json has the committed run's layout (top-level keys, the model
    entry, settings, each method's keys), written straight into --out."""
    code = main(["evaluate", "--model", "demo-clip", "--scenes", "1", "--seed", "2", "--methods", "icam",
                 "--completeness-examples", "0", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    ours = json.loads((tmp_path / "results.json").read_text())
    with open(COMMITTED, encoding="utf-8") as handle:
        committed = json.load(handle)
    assert set(ours) == set(committed) - {"per_layer"}  # the committed run asked for the per-layer table
    assert set(ours["model"]) == set(committed["model"]) and set(ours["settings"]) == set(committed["settings"])
    assert set(ours["methods"]["InteractionCAM"]) == set(committed["methods"]["InteractionCAM"])
    assert not (tmp_path / "comparison.json").exists() and not (tmp_path / "demo-clip").exists()


# ------------------------------------------------------------------ two models end to end


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    if not siglip2_available():
        pytest.skip("transformers < 4.49 has no Siglip2Model: the SigLIP-2 demo model is skipped")
    out = tmp_path_factory.mktemp("comparison")
    code = main(["evaluate", "--model", "demo-clip", "--model", "demo-siglip2", "--scenes", "1", "--seed", "5",
                 "--methods", "bii", "itsm", "--n-steps", "2", "--completeness-examples", "0", "--figure-pairs", "1",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    return out, json.loads((out / "comparison.json").read_text())


def test_each_model_is_a_run_of_its_own(comparison):
    out, result = comparison
    for label in ("demo-clip", "demo-siglip2"):
        for name in ("results.json", "report.md", "run.json"):
            assert (out / label / name).is_file(), (label, name)
    assert list(result["models"]) == ["demo-clip", "demo-siglip2"]
    assert list(result["methods"]["demo-clip"]) == ["BilinearIntegratedInteractions", "ITSM-H"]
    # SigLIP-2's image tower has no per-patch head: ITSM-H is skipped there, with the reason
    assert list(result["methods"]["demo-siglip2"]) == ["BilinearIntegratedInteractions"]
    assert "per-patch output head" in result["models"]["demo-siglip2"]["skipped_methods"]["ITSM-H"]
    text = (out / "comparison.md").read_text()
    assert "| demo-siglip2 | BilinearIntegratedInteractions |" in text and "ITSM-H (the image tower" in text
    assert "Not run on this model: ITSM-H (the image tower" in (out / "demo-siglip2" / "report.md").read_text()


def test_differences_are_the_records(comparison):
    out, result = comparison
    (entry,) = result["differences"]
    assert entry["method"] == "BilinearIntegratedInteractions" and entry["reference"] == "demo-clip"

    def energies(label):
        return {(example, r["object"]): r["PGE"] for example, records in complete_blocks(str(out / label)).items()
                for r in records if r["kind"] == "object" and r["method"] == entry["method"]}

    clip, siglip2 = energies("demo-clip"), energies("demo-siglip2")
    assert clip.keys() == siglip2.keys() and len(clip) == entry["PGE"]["n"] > 0
    expected = np.mean([siglip2[key] - clip[key] for key in clip])
    assert entry["PGE"]["difference"] == pytest.approx(expected, abs=1e-12)
    table = result["methods"]["demo-siglip2"][entry["method"]]
    assert table["mPGE"] == pytest.approx(np.mean(list(siglip2.values())), abs=1e-12)


def test_figure_maps_are_the_runs_records(comparison):
    """The figure's maps are recomputed: their PGE is the one each run recorded."""
    from captum_bilinear.datasets import demo_dataset
    from captum_bilinear.evaluation.bundle import load_bundle
    from captum_bilinear.evaluation.compare_figures import pair_maps
    from captum_bilinear.evaluation.run import EvaluationConfig

    out, result = comparison
    (figure,) = result["figures"]
    assert (out / figure).stat().st_size > 0
    index = int(figure.split("-")[1].split(".")[0])
    config = EvaluationConfig(scenes=1, seed=5, n_steps=2)
    example = demo_dataset(1, seed=5)[index]
    for label in ("demo-clip", "demo-siglip2"):
        records = complete_blocks(str(out / label))[example.example_id]
        recorded = [r["PGE"] for r in records if r["kind"] == "object" and r["method"] == "BilinearIntegratedInteractions"]
        bundle = load_bundle(label, json.loads((out / label / "results.json").read_text())["model"]["layer"])
        _, _, maps = pair_maps(bundle, example, config, ["BilinearIntegratedInteractions"])
        assert [energy for _, energy in maps["BilinearIntegratedInteractions"]] == pytest.approx(recorded, abs=1e-9)


@needs_siglip2
def test_siglip2_records_are_bii_on_its_processors_patches(comparison):
    """BII on the SigLIP-2 demo model called here as a user would (its processor's NaFlex
    patches and masks, the caption alone), with the span's map on the 8x8 grid (no CLS):
    the pointing game in the run's records is the same."""
    from captum_bilinear import BilinearIntegratedInteractions
    from captum_bilinear.datasets import demo_dataset, demo_scenes
    from captum_bilinear.metrics import pointing_game
    from captum_bilinear.selection import span_image_map
    from captum_bilinear.zoo import default_layers

    out, _ = comparison
    loaded = load_model("demo-siglip2")
    model, tokenizer, processor = loaded.model, loaded.tokenizer, loaded.image_processor
    scene, example = demo_scenes(1, seed=5)[0], demo_dataset(1, seed=5)[0]
    images = processor(images=scene.pil(), return_tensors="pt")
    text = tokenizer(scene.caption, return_tensors="pt")
    bii = BilinearIntegratedInteractions(model, default_layers(model, loaded.default_layer))
    A = bii.attribute((text["input_ids"], images["pixel_values"]),
                      additional_forward_args=((text["attention_mask"],),
                                               (images["pixel_attention_mask"], images["spatial_shapes"])),
                      n_steps=2)
    assert A.shape == (1, text["input_ids"].shape[1], 64)
    energies = [pointing_game(span_image_map(A[0], obj.span, (8, 8), has_cls=False), obj.box, (64, 64)).energy
                for obj in scene.objects]
    records = complete_blocks(str(out / "demo-siglip2"))[example.example_id]
    recorded = [r["PGE"] for r in records if r["kind"] == "object" and r["method"] == "BilinearIntegratedInteractions"]
    assert recorded == pytest.approx(energies, abs=1e-6)
    assert torch.isfinite(A).all()


@needs_siglip2
def test_two_models_under_torchrun_share_one_process_group(tmp_path):
    """Under torchrun the second model's run failed at its first barrier ("Connection reset
    by peer"): the first run ended the process group and rank 1 re-joined through a store
    rank 0 then closed. Both runs' records must be those of one process per model."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    arguments = ["-m", "captum_bilinear", "evaluate", "--model", "demo-clip", "--model", "demo-siglip2",
                 "--scenes", "2", "--seed", "5", "--methods", "icam", "--completeness-examples", "0",
                 "--faithfulness-examples", "0", "--figure-pairs", "0", "--no-progress", "--out"]  # PGE is compared
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          *arguments, str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, *arguments, str(tmp_path / "one")], env=env, capture_output=True, text=True,
                         timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    for label in ("demo-clip", "demo-siglip2"):
        shared = complete_blocks(str(tmp_path / "two" / label))
        alone = complete_blocks(str(tmp_path / "one" / label))
        assert sorted(shared) == sorted(alone) and len(shared) == 2
        for example_id, records in alone.items():
            pge = sorted(r["PGE"] for r in records if r["kind"] == "object")
            assert sorted(r["PGE"] for r in shared[example_id] if r["kind"] == "object") == pytest.approx(pge, abs=1e-6)
    assert (tmp_path / "two" / "comparison.md").is_file()
