"""Pair arguments every method shares: NaN / inf in inputs or baselines and empty
batches are refused, naming the argument, before any model pass."""

import pytest
import torch
from conftest import caption, clip_layers, make_clip

from captum_bilinear import IntegratedJacobians
from captum_bilinear.registry import METHODS


def forward_calls(model):
    calls = []
    handles = [m.register_forward_hook(lambda *_: calls.append(1)) for m in model.modules()]
    return calls, handles


def _with_nan(tensor):
    bad = tensor.clone().float() if not torch.is_floating_point(tensor) else tensor.clone()
    bad.view(-1)[3] = float("nan")
    return bad


CASES = {
    "inputs[1]": r"inputs\[1\]: contains 1 NaN or infinite value\(s\) \(the first, nan, at index \(0, 0, 0, 3\)\)",
    "baselines[1]": r"baselines\[1\]: contains 1 NaN or infinite value\(s\)",
    "inf baseline": r"baselines\[1\]: inf is not a finite number",
}


@pytest.mark.parametrize(
    "short, where, message",
    [(short, where, message) for short in sorted(METHODS) for where, message in CASES.items()
     if where == "inputs[1]" or not short.startswith("itsm")],  # ITSM takes no baselines
)
def test_every_method_refuses_non_finite_inputs_and_baselines(short, where, message, pixels):
    spec = METHODS[short]
    model = make_clip()
    ids = caption(320, 1125)
    inputs, baselines = (ids, pixels), None
    if where == "inputs[1]":
        inputs = (ids, _with_nan(pixels))
    elif where == "baselines[1]":
        baselines = (None, _with_nan(torch.zeros_like(pixels)))
    else:
        baselines = (None, float("inf"))
    method = spec.make(model, clip_layers(model))
    calls, handles = forward_calls(model)
    try:
        with pytest.raises(ValueError, match=message):
            method.attribute(inputs, baselines)
    finally:
        for handle in handles:
            handle.remove()
    assert not calls  # refused before any pass


@pytest.mark.parametrize("baselines, name", [(None, "inputs"), ("nan", "baselines")])
def test_integrated_jacobians_refuses_non_finite_values(baselines, name):
    encoder = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    x = torch.randn(2, 4)
    if name == "inputs":
        x[1, 2] = float("inf")
    else:
        baselines = torch.full((1, 4), float("nan"))
    with pytest.raises(ValueError, match=rf"{name}: contains \d+ NaN or infinite value"):
        IntegratedJacobians(encoder, encoder[0]).attribute(x, baselines)


def test_an_empty_batch_is_refused(pixels):
    model = make_clip()
    bii = METHODS["bii"].make(model, clip_layers(model))
    with pytest.raises(ValueError, match=r"inputs\[0\]: a batch of 0 examples \(shape \(0, 4\)\)"):
        bii.attribute((caption(320, 1125)[:0], pixels[:0]))


def test_tuple_sides_name_the_tensor():
    encoder = torch.nn.Linear(4, 3)
    x, y = torch.randn(2, 4), torch.randn(2, 4)
    y[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"inputs, tensor 1: contains 1 NaN"):
        IntegratedJacobians(lambda a, b: encoder(a + b), encoder).attribute((x, y))
