"""A small `captum-bilinear evaluate` run: the files it writes, the ranges of its
figures, and that the same seed reproduces them."""

import json
import math
import os

import pytest

from captum_bilinear.cli import main
from captum_bilinear.evaluation import EXPLAINERS, run_evaluation

KEYS = ("PGA", "mPGE", "CID", "CII", "CTD", "CTI", "p_faithfulness", "seconds_per_pair")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    run_evaluation(2, seed=1, out=str(out), n_steps=8, completeness_scenes=1, completeness_steps=(1, 4, 16),
                   show_progress=False)
    with open(out / "results.json") as handle:
        return out, json.load(handle)


def test_writes_results_report_and_plots(small_run):
    out, results = small_run
    for name in ("results.json", "report.md", "completeness.png", "curves.png", "pge.png"):
        assert os.path.getsize(out / name) > 0, name
    assert set(results["methods"]) == set(EXPLAINERS)
    assert 0.0 <= results["model"]["retrieval_top1"] <= 1.0
    report = (out / "report.md").read_text()
    for name in EXPLAINERS:
        assert f"| {name} |" in report


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
    # The completeness error of BII falls with n_steps (Gauss-Legendre).
    median = results["completeness"]["gausslegendre"]["median"]
    assert median[-1] < median[0]


def test_same_seed_reproduces_the_table(small_run, tmp_path):
    _, results = small_run
    methods = ["InteractionLIME", "WeightedBanzhafInteractions", "BilinearIntegratedInteractions"]
    again = run_evaluation(2, seed=1, out=str(tmp_path), methods=methods, n_steps=8, completeness_scenes=0,
                           show_progress=False)
    for name in methods:
        for key in KEYS[:-1]:
            first, second = results["methods"][name][key], again["methods"][name][key]
            assert first == pytest.approx(second, rel=1e-6, abs=1e-9, nan_ok=True), (name, key)


def test_unknown_method_is_refused(tmp_path, capsys):
    assert main(["evaluate", "--scenes", "1", "--out", str(tmp_path), "--methods", "GradCAM++"]) == 2
    assert "methods: unknown ['GradCAM++']" in capsys.readouterr().err
