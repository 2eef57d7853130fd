import math

import pytest
import torch

from captum_bilinear.metrics import CurveResult, PointingGameResult, summarize


def test_summarize_pointing_results():
    results = [PointingGameResult(True, 1.0), PointingGameResult(False, 0.0), PointingGameResult(True, 0.5)]
    summary = summarize(results)
    assert summary["hit"]["mean"] == pytest.approx(2 / 3)
    assert summary["energy"]["mean"] == pytest.approx(0.5)
    assert summary["energy"]["std"] == pytest.approx(0.5)  # sample std of 1, 0, 0.5
    assert summary["hit"]["n"] == 3


def test_summarize_skips_curves_and_counts_nans():
    curve = CurveResult(torch.zeros(3), torch.zeros(3), 0.5, "deletion")
    summary = summarize([curve, {"auc": float("nan")}, {"auc": 1.5}])
    assert set(summary) == {"auc"}
    assert summary["auc"]["mean"] == pytest.approx(1.0) and summary["auc"]["n_nan"] == 1
    assert math.isnan(summarize([{"x": 1.0}])["x"]["std"])


def test_summarize_bad_inputs():
    with pytest.raises(TypeError, match="results"):
        summarize([1.0])
    with pytest.raises(TypeError, match="results"):
        summarize({"auc": 1.0})


def test_summarize_object_discrimination_skips_the_value_matrix():
    from captum_bilinear.metrics import object_discrimination

    A = torch.zeros(2, 5)
    A[0, 1] = 1.0
    one_object = object_discrimination(A, [(0, 1)], [(0, 0, 8, 8)], (16, 16))  # values is 1x1
    summary = summarize([one_object, one_object])
    assert "values" not in summary
    assert summary["own_positive"]["mean"] == 1.0 and summary["cross_negative"]["n_nan"] == 2
