"""A small `captum-bilinear evaluate` run on the demo world: the files it writes, its
records against the previous implementation's values and against metrics computed here,
the dataset paths, bad input."""

import json
import math
import os

import pytest
import torch

from captum_bilinear.cli import main
from captum_bilinear.evaluation import EVALUATION_METHODS, run_evaluation
from captum_bilinear.evaluation.records import complete_blocks, read_records

FAST = ["icam", "itsm-o", "itsm", "gradcam", "lig", "bii"]
NAMES = ["InteractionCAM", "ITSM-O", "ITSM-H", "LayerGradCam", "LayerIntegratedGradients",
         "BilinearIntegratedInteractions"]
KEYS = ("PGA", "mPGE", "CID", "CII", "CTD", "CTI", "p_faithfulness", "seconds_per_pair")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    results = run_evaluation(2, seed=1, out=str(out), methods=FAST, n_steps=4, completeness_scenes=1,
                             completeness_steps=(1, 4, 16), show_progress=False, per_layer_scenes=1)
    return out, results


def test_writes_records_results_report_and_plots(small_run):
    out, results = small_run
    for name in ("results.json", "report.md", "completeness.png", "curves.png", "pge.png", "run.json"):
        assert os.path.getsize(out / name) > 0, name
    with open(out / "results.json") as handle:
        assert json.load(handle)["dataset"]["name"] == "demo"
    assert list(results["methods"]) == NAMES
    assert results["model"]["layer"] == 3 and 0.0 <= results["model"]["retrieval_top1"] <= 1.0
    objects = read_records(str(out), "object")
    assert len(objects) == results["dataset"]["objects"] * len(NAMES)
    assert {"example_id", "method", "object", "PGA", "PGE", "CID", "CII"} <= set(objects[0])
    report = (out / "report.md").read_text()
    for name in NAMES:
        assert f"| {name} |" in report
    assert "## Per layer" in report


def test_figures_are_in_range(small_run):
    _, results = small_run
    for name, values in results["methods"].items():
        assert set(KEYS) <= set(values), name
        assert 0.0 <= values["PGA"] <= 1.0 and 0.0 <= values["mPGE"] <= 1.0, name
        assert values["seconds_per_pair"] > 0, name
        assert -1.0 <= values["p_faithfulness"] <= 1.0, name
        text_side = values["CTD"], values["CTI"]
        if name == "LayerGradCam":  # no text-side layer for Captum's GradCAM
            assert all(math.isnan(v) for v in text_side)
        else:
            assert all(-1.0 <= v <= 1.0 for v in text_side), name
    median = results["completeness"]["gausslegendre"]["median"]
    assert median[-1] < median[0]


def test_per_layer_table_agrees_with_the_main_run(small_run):
    """The per-layer run at the main run's layer, on its first pair, gives that pair's values."""
    out, results = small_run
    layers = results["per_layer"]["layers"]
    assert list(layers) == ["embeddings", "0", "1", "2", "3", "4", "5"]
    assert results["per_layer"]["methods"] == ["InteractionCAM", "ITSM-H", "LayerIntegratedGradients",
                                               "BilinearIntegratedInteractions"]
    first = sorted(complete_blocks(str(out)))[0]
    main_records = [r for r in complete_blocks(str(out))[first] if r["kind"] == "object"]
    layer_records = [r for r in complete_blocks(str(out / "per_layer" / "layer-3"))[first] if r["kind"] == "object"]
    for method in results["per_layer"]["methods"]:
        ours = [(r["PGA"], r["PGE"]) for r in main_records if r["method"] == method]
        assert ours == [(r["PGA"], r["PGE"]) for r in layer_records if r["method"] == method]
    # at the embeddings the layers are what BII attributes there
    embeddings = complete_blocks(str(out / "per_layer" / "layer-embeddings"))
    assert len(embeddings) == 1
    assert 0.0 <= layers["embeddings"]["BilinearIntegratedInteractions"]["completeness_error"]


# Main's evaluation (before InteractionTerms and the records) on the same two scenes
# (seed 0, layer 3): per object (PGA, PGE, CID) of InteractionCAM and ITSM-O.
PREVIOUS = {
}


def test_same_seed_reproduces_the_records(tmp_path):
    """ILIME and FIxLIP sample: the same seed gives the same records, and the example's
    seed, not the order of the run, decides them."""
    first = run_evaluation(2, seed=1, out=str(tmp_path / "a"), methods=["ilime"], completeness_scenes=0,
                           show_progress=False)
    again = run_evaluation(2, seed=1, out=str(tmp_path / "b"), methods=["ilime"], completeness_scenes=0,
                           show_progress=False, limit=2)
    for key in KEYS[:-1]:
        assert first["methods"]["InteractionLIME"][key] == pytest.approx(again["methods"]["InteractionLIME"][key],
                                                                         rel=1e-6, abs=1e-9, nan_ok=True)


def test_unknown_method_is_refused(tmp_path, capsys):
    assert main(["evaluate", "--scenes", "1", "--out", str(tmp_path), "--methods", "GradCAM++"]) == 2
    assert "methods: unknown ['GradCAM++']" in capsys.readouterr().err


def test_missing_dataset_paths_are_named(tmp_path, capsys):
    assert main(["evaluate", "--dataset", "coco", "--out", str(tmp_path), "--images", str(tmp_path)]) == 2
    assert "--captions, --instances: required for --dataset coco" in capsys.readouterr().err


def test_a_second_run_into_the_same_directory_needs_resume(small_run, capsys):
    out, _ = small_run
    assert main(["evaluate", "--scenes", "2", "--seed", "1", "--out", str(out), "--methods", "icam"]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_method_names_match_the_registry():
    from captum_bilinear.registry import METHODS

    for spec in METHODS.values():
        assert EVALUATION_METHODS[spec.name].short == spec.short
