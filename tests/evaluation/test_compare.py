"""``evaluate --model A --model B``: the bundled models by name, one run per model with
today's layout, the comparison's numbers against its records, its figures' maps against
the runs' records, SigLIP-2's records against BII computed here from its processor's
NaFlex inputs, and what transformers 4.45 (no SigLIP-2) says."""

import json
import os

import numpy as np
import pytest

from captum_bilinear.cli import main
from captum_bilinear.evaluation.compare import check_models, model_label, paired_difference
from captum_bilinear.loading import load_model
from captum_bilinear.zoo.siglip2 import siglip2_available

needs_siglip2 = pytest.mark.skipif(not siglip2_available(),
                                   reason="transformers < 4.49 has no Siglip2Model: the SigLIP-2 demo model is skipped")
COMMITTED = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "evaluation", "results.json")


def test_bundled_models_by_name():
    assert load_model("demo-clip").name == load_model(None).name == "bundled demo CLIP"
    assert load_model("demo-clip").default_layer == load_model(None).default_layer


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
