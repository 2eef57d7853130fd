"""Object discrimination and hard negatives on hand-built interaction tensors."""

import math

import pytest
import torch

from captum_bilinear.metrics import hard_negative, object_discrimination

SIZE = (16, 16)  # 2x2 grid of 8x8 patches; positions: CLS, TL, TR, BL, BR
TL, TR, BL, BR = (0, 0, 8, 8), (8, 0, 16, 8), (0, 8, 8, 16), (8, 8, 16, 16)
P_TL, P_TR, P_BL, P_BR = 1, 2, 3, 4


def scene():
    """Caption "a cat and a red dog": cat = token 2, red dog = tokens 5..6."""
    A = torch.zeros(8, 5)
    A[2, P_TL], A[2, P_BR] = 1.0, -0.5
    A[5, P_BR], A[6, P_BR] = 0.5, 1.5
    A[5, P_TL] = -0.25
    A[:, 0] = 10.0  # CLS: in no box
    return A


def test_discriminating_scene():
    result = object_discrimination(scene(), [(2, 3), (5, 7)], [TL, BR], SIZE)
    assert result.values.tolist() == [[1.0, -0.5], [-0.25, 2.0]]
    assert result.own.tolist() == [1.0, 2.0]
    assert sorted(result.cross.tolist()) == [-0.5, -0.25]
    assert (result.own_positive, result.cross_negative, result.own_above_cross) == (1.0, 1.0, 1.0)


def test_partly_failing_scene():
    A = scene()
    A[5, P_TL] = 0.75  # "red dog" now also likes the cat's box
    A[2, P_TL] = -1.0  # and "cat" dislikes its own box
    result = object_discrimination(A, [(2, 3), (5, 7)], [TL, BR], SIZE)
    assert result.values.tolist() == [[-1.0, -0.5], [0.75, 2.0]]
    assert result.own_positive == 0.5
    assert result.cross_negative == 0.5
    assert result.own_above_cross == 0.5  # cat: -1 < -0.5; dog: 2 > 0.75


def test_boxes_weight_partial_patches():
    A = scene()
    # the cat's box covers the top-left patch and half of the bottom-right one
    result = object_discrimination(A, [(2, 3)], [(0, 0, 16, 8)], SIZE)  # top row only
    assert result.values.tolist() == [[1.0]]
    result = object_discrimination(A[None], [(2, 3)], [(0, 0, 16, 12)], SIZE)  # top row + half the bottom
    assert result.values.tolist() == [[1.0 - 0.25]]
    assert math.isnan(result.cross_negative) and math.isnan(result.own_above_cross)


def test_discrimination_bad_inputs():
    with pytest.raises(ValueError, match="spans, boxes"):
        object_discrimination(scene(), [(2, 3)], [TL, BR], SIZE)
    with pytest.raises(ValueError, match="spans"):
        object_discrimination(scene(), [], [], SIZE)
    with pytest.raises(ValueError, match="span"):
        object_discrimination(scene(), [(3, 3)], [TL], SIZE)
    with pytest.raises(ValueError, match="box"):
        object_discrimination(scene(), [(2, 3)], [(0, 0, 20, 8)], SIZE)
    with pytest.raises(ValueError, match="interactions"):
        object_discrimination(torch.zeros(2, 8, 5), [(2, 3)], [TL], SIZE)


def test_hard_negative_deltas():
    original = scene()
    swapped = scene()
    swapped[2, P_TL] = 0.25  # "dog" in place of "cat": weaker on the cat's box
    result = hard_negative(original, swapped, (2, 3), TL, SIZE, score=0.31, score_swapped=0.27)
    assert result.attribution == 1.0 and result.attribution_swapped == 0.25
    assert result.delta_attribution == pytest.approx(-0.75)
    assert result.delta_score == pytest.approx(-0.04)


def test_hard_negative_default_score_is_the_interaction_sum():
    original = torch.zeros(3, 5)
    original[1, P_TL] = 2.0
    original[0, 0] = 0.5  # sum 2.5
    swapped = torch.zeros(4, 5)  # the new word has two tokens, 1..2
    swapped[1, P_TL], swapped[2, P_TL] = 0.5, -1.0  # sum -0.5
    result = hard_negative(original, swapped, (1, 2), TL, SIZE, span_swapped=(1, 3))
    assert (result.score, result.score_swapped) == (2.5, -0.5)
    assert result.delta_score == pytest.approx(-3.0)
    assert result.attribution_swapped == pytest.approx(-0.5)


def test_hard_negative_bad_inputs():
    original, swapped = torch.zeros(3, 5), torch.zeros(3, 10)
    with pytest.raises(ValueError, match="interactions_swapped"):
        hard_negative(original, swapped, (1, 2), TL, SIZE)
    with pytest.raises(ValueError, match="span_swapped"):
        hard_negative(original, torch.zeros(2, 5), (1, 2), TL, SIZE, span_swapped=(1, 3))
    with pytest.raises(ValueError, match="span"):
        hard_negative(original, original, (2, 1), TL, SIZE)
    with pytest.raises(TypeError, match="score"):
        hard_negative(original, original, (1, 2), TL, SIZE, score="high")
