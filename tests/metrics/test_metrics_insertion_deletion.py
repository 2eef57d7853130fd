"""Insertion / deletion curves with a score that is linear in the kept items, so every
curve point and the trapezoidal AUC have closed forms."""

import pytest
import torch

from captum_bilinear.metrics import curve_masks, deletion_curve, insertion_curve

WEIGHTS = torch.tensor([1.0, 4.0, 2.0, 3.0])  # the items' contributions; total 10


def linear_score(keep):
    assert keep.dtype == torch.bool
    return keep.double() @ WEIGHTS.double()


def test_deletion_in_best_order_closed_form():
    result = deletion_curve(WEIGHTS, linear_score)
    # removing 4, 3, 2, 1 in turn: 10, 6, 3, 1, 0
    assert result.scores.tolist() == [10.0, 6.0, 3.0, 1.0, 0.0]
    assert result.fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    # trapezoid, h = 1/4: (8 + 4.5 + 2 + 0.5) / 4
    assert result.auc == pytest.approx(3.75)
    assert result.mode == "deletion"


def test_insertion_in_best_order_closed_form():
    result = insertion_curve(WEIGHTS, linear_score)
    assert result.scores.tolist() == [0.0, 4.0, 7.0, 9.0, 10.0]
    assert result.auc == pytest.approx(6.25)  # (2 + 5.5 + 8 + 9.5) / 4


def test_for_a_linear_score_deletion_and_insertion_aucs_add_up_to_the_total():
    order = torch.tensor([0.3, -1.0, 2.0, 0.0])  # any order
    total = float(WEIGHTS.sum())
    assert deletion_curve(order, linear_score).auc + insertion_curve(order, linear_score).auc == pytest.approx(total)


def test_a_worse_order_has_a_larger_deletion_auc():
    best = deletion_curve(WEIGHTS, linear_score).auc
    worst = deletion_curve(-WEIGHTS, linear_score).auc
    # reversed order removes 1, 2, 3, 4: 10, 9, 7, 4, 0 -> (9.5 + 8 + 5.5 + 2) / 4
    assert worst == pytest.approx(6.25) and best < worst


def test_uniform_items_give_half_the_total():
    n = 10
    result = deletion_curve(torch.arange(n).double(), lambda keep: keep.double().sum(1))
    assert result.auc == pytest.approx(n / 2)


def test_fewer_steps_than_items():
    result = deletion_curve(WEIGHTS, linear_score, n_steps=2)
    assert result.fractions.tolist() == [0.0, 0.5, 1.0]
    assert result.scores.tolist() == [10.0, 3.0, 0.0]
    assert result.auc == pytest.approx(4.0)  # ((10 + 3) / 2 + 3 / 2) / 2


def test_uneven_steps_use_the_actual_removed_fraction():
    fractions, keep = curve_masks(torch.tensor([3.0, 2.0, 1.0]), n_steps=2)
    assert torch.allclose(fractions, torch.tensor([0.0, 1 / 3, 1.0], dtype=torch.float64))  # 0, floor(1.5), 3 items
    assert keep.tolist() == [[True, True, True], [False, True, True], [False, False, False]]


def test_ties_are_broken_by_index_and_grid_maps_flatten_row_major():
    _, keep = curve_masks(torch.tensor([1.0, 1.0, 0.0]), mode="insertion")
    assert keep.tolist() == [[False, False, False], [True, False, False], [True, True, False], [True, True, True]]
    _, keep = curve_masks(torch.tensor([[0.0, 5.0], [1.0, 0.5]]), n_steps=1 * 4, mode="deletion")
    assert keep[1].tolist() == [True, False, True, True]  # item (0, 1) first
    assert keep[2].tolist() == [True, False, False, True]  # then (1, 0)


def test_normalization():
    def shifted(keep):  # full 15, empty 5
        return linear_score(keep) + 5.0

    full = deletion_curve(WEIGHTS, shifted, normalize="full")
    assert full.scores[0].item() == pytest.approx(1.0)
    assert full.auc == pytest.approx((3.75 + 5.0) / 15.0)
    ranged = deletion_curve(WEIGHTS, shifted, normalize="range")
    assert ranged.scores[0].item() == pytest.approx(1.0) and ranged.scores[-1].item() == pytest.approx(0.0)
    assert ranged.auc == pytest.approx(0.375)
    ranged_insertion = insertion_curve(WEIGHTS, shifted, normalize="range")
    assert ranged_insertion.auc == pytest.approx(0.625)
    flat = deletion_curve(WEIGHTS, lambda keep: torch.ones(keep.shape[0]), normalize="range")
    assert torch.isnan(torch.tensor(flat.auc))


def test_batch_size_splits_the_calls_without_changing_the_curve():
    sizes = []

    def score(keep):
        sizes.append(keep.shape[0])
        return linear_score(keep)

    result = deletion_curve(WEIGHTS, score, batch_size=2)
    assert sizes == [2, 2, 1]
    assert result.auc == pytest.approx(3.75)


def test_all_points_are_evaluated_in_one_call_by_default():
    sizes = []
    deletion_curve(WEIGHTS, lambda keep: sizes.append(tuple(keep.shape)) or linear_score(keep))
    assert sizes == [(5, 4)]


def test_bad_inputs():
    with pytest.raises(ValueError, match="n_steps"):
        deletion_curve(WEIGHTS, linear_score, n_steps=5)
    with pytest.raises(ValueError, match="n_steps"):
        deletion_curve(WEIGHTS, linear_score, n_steps=0)
    with pytest.raises(TypeError, match="n_steps"):
        deletion_curve(WEIGHTS, linear_score, n_steps=2.0)
    with pytest.raises(ValueError, match="order"):
        deletion_curve(torch.zeros(2, 2, 2), linear_score)
    with pytest.raises(ValueError, match="order"):
        deletion_curve(torch.tensor([1.0, float("nan")]), linear_score)
    with pytest.raises(ValueError, match="normalize"):
        deletion_curve(WEIGHTS, linear_score, normalize="max")
    with pytest.raises(TypeError, match="score_fn"):
        deletion_curve(WEIGHTS, "score")
    with pytest.raises(TypeError, match="score_fn"):
        deletion_curve(WEIGHTS, lambda keep: [0.0] * keep.shape[0])
    with pytest.raises(ValueError, match="score_fn"):
        deletion_curve(WEIGHTS, lambda keep: torch.zeros(keep.shape[0], 2))
    with pytest.raises(ValueError, match="score_fn"):
        deletion_curve(WEIGHTS, lambda keep: torch.full((keep.shape[0],), float("nan")))
    with pytest.raises(ValueError, match="mode"):
        curve_masks(WEIGHTS, mode="both")
    with pytest.raises(ValueError, match="batch_size"):
        deletion_curve(WEIGHTS, linear_score, batch_size=0)
