"""Argument checks: the value back when it is usable, else an error naming the argument."""

import numpy as np
import pytest
import torch

from captum_bilinear._utils.checks import check_flag


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), (np.bool_(True), True)])
def test_check_flag_takes_bools(value, expected):
    result = check_flag(value, "return_convergence_delta")
    assert result is expected


@pytest.mark.parametrize("value", ["yes", "False", 1, 0, None, 1.0, torch.tensor(True)])
def test_check_flag_refuses_everything_else(value):
    with pytest.raises(TypeError, match=r"return_convergence_delta: expected True or False, got .+ \("):
        check_flag(value, "return_convergence_delta")


def test_a_box_overhanging_by_less_than_half_a_pixel_is_the_box_clipped():
    """``--box 0,0,64.0000001,64`` on a 64x64 image was refused as lying "outside the
    image": under half a pixel of overhang holds no further pixel centre."""
    from captum_bilinear._utils.checks import check_box

    assert check_box((-0.4, 0, 64.0000001, 64.3), (64, 64)) == (0.0, 0.0, 64.0, 64.0)


def test_a_box_partly_outside_the_image_is_not_said_to_lie_outside_it():
    from captum_bilinear._utils.checks import check_box

    with pytest.raises(ValueError, match=r"box: \(-5.0, -5.0, 40.0, 40.0\) reaches beyond the image of \(height, "
                                         r"width\) = \(64, 64\) by up to 5 pixels; expected x in \[0, 64\], y in \[0, 64\]"):
        check_box((-5, -5, 40, 40), (64, 64))
    with pytest.raises(ValueError, match=r"box: \(70.0, 0.0, 80.0, 10.0\) lies outside the image"):
        check_box((70, 0, 80, 10), (64, 64))
