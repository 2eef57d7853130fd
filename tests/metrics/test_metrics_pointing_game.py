"""The pointing game on hand-built maps with known answers."""

import pytest
import torch

from captum_bilinear.metrics import pointing_game
from captum_bilinear.selection import span_image_map

SIZE = (16, 16)  # a 2x2 grid of 8x8-pixel patches
TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT = (0, 0, 8, 8), (8, 0, 16, 8), (0, 8, 8, 16), (8, 8, 16, 16)


# ------------------------------------------------------------------------ pointing game


def test_single_hot_patch_inside_and_outside_the_box():
    image_map = torch.tensor([[0.0, 0.0], [1.0, 0.0]])  # bottom-left is hot
    inside = pointing_game(image_map, BOTTOM_LEFT, SIZE)
    assert inside.hit is True and inside.energy == pytest.approx(1.0)
    outside = pointing_game(image_map, TOP_RIGHT, SIZE)
    assert outside.hit is False and outside.energy == pytest.approx(0.0)


def test_energy_of_known_mass_split():
    image_map = torch.tensor([[3.0, 1.0], [0.0, 0.0]])
    assert pointing_game(image_map, TOP_LEFT, SIZE).energy == pytest.approx(0.75)
    # left half of the top-left patch: 1.5 of 4
    assert pointing_game(image_map, (0, 0, 4, 8), SIZE).energy == pytest.approx(0.375)


def test_energy_ignores_negative_mass():
    image_map = torch.tensor([[2.0, -5.0], [2.0, 0.0]])  # positive mass 4
    result = pointing_game(image_map, TOP_LEFT, SIZE)
    assert result.energy == pytest.approx(0.5)
    assert result.hit is True  # tie of the two left patches; one lies in the box


def test_all_negative_map_has_zero_energy_but_still_points():
    image_map = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]])
    result = pointing_game(image_map, TOP_LEFT, SIZE)
    assert result.energy == 0.0 and result.hit is True
    assert pointing_game(image_map, BOTTOM_RIGHT, SIZE).hit is False


def test_constant_map_points_nowhere():
    result = pointing_game(torch.zeros(2, 2), (0, 0, 16, 16), SIZE)
    assert result.hit is False and result.energy == 0.0


def test_nearest_top_patch_overlapping_box_is_a_hit():
    image_map = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    # the box covers only the right half of the hot patch (columns 4..7)
    assert pointing_game(image_map, (4, 0, 16, 16), SIZE, mode="nearest").hit is True


def test_bilinear_maximum_and_energy():
    # bilinear (align_corners=False) from 2 to 16 pixels: the hot patch's value holds
    # for pixels 0..3 and falls by 1/8 per pixel after; 1-D profile, summed: 8, of
    # which 7 in pixels 0..7. The map is the product of two such profiles.
    image_map = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert pointing_game(image_map, (0, 0, 4, 4), SIZE, mode="bilinear").hit is True
    assert pointing_game(image_map, (4, 0, 16, 16), SIZE, mode="bilinear").hit is False
    energy = pointing_game(image_map, TOP_LEFT, SIZE, mode="bilinear").energy
    assert energy == pytest.approx(49 / 64)


def test_tolerance_grows_box_for_hit_only():
    image_map = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # hot pixels 0..7
    box = (10, 10, 16, 16)
    assert pointing_game(image_map, box, SIZE, tolerance=2).hit is False  # grown to 8
    grown = pointing_game(image_map, box, SIZE, tolerance=3)  # grown to 7: touches pixel 7
    assert grown.hit is True and grown.energy == 0.0


def test_pointing_game_on_span_map_from_interactions():
    A = torch.zeros(4, 5)
    A[1, 4] = 1.0  # "dog" (token 1) -> bottom-right
    A[2, 1] = 0.5  # token 2 -> top-left
    result = pointing_game(span_image_map(A, (1, 2)), BOTTOM_RIGHT, SIZE)
    assert result.hit and result.energy == pytest.approx(1.0)


def test_box_errors():
    image_map = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="box"):
        pointing_game(image_map, (0, 0, 17, 8), SIZE)  # outside the image
    with pytest.raises(ValueError, match="box"):
        pointing_game(image_map, (-1, 0, 8, 8), SIZE)
    with pytest.raises(ValueError, match="box"):
        pointing_game(image_map, (8, 0, 8, 8), SIZE)  # empty
    with pytest.raises(ValueError, match="box"):
        pointing_game(image_map, (0, 0, 8), SIZE)
    with pytest.raises(ValueError, match="box"):
        pointing_game(image_map, (0.1, 0, 0.4, 8), SIZE)  # no pixel centre
    with pytest.raises(TypeError, match="box"):
        pointing_game(image_map, "box", SIZE)
    with pytest.raises(ValueError, match="image_size"):
        pointing_game(image_map, TOP_LEFT, (0, 16))
    with pytest.raises(ValueError, match="image_map"):
        pointing_game(torch.zeros(1, 2, 2), TOP_LEFT, SIZE)
    with pytest.raises(ValueError, match="mode"):
        pointing_game(image_map, TOP_LEFT, SIZE, mode="bicubic")
    with pytest.raises(ValueError, match="image_map"):
        pointing_game(torch.tensor([[float("nan"), 0.0], [0.0, 0.0]]), TOP_LEFT, SIZE)
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(image_map, TOP_LEFT, SIZE, tolerance=-1)
