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
