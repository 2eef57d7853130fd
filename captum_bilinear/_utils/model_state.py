"""Leaving the user's model as it was."""

from contextlib import contextmanager
from typing import Iterator

from torch import nn


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[None]:
    """Runs the block with every submodule in eval mode (dropout off, so the path
    integrals are of one deterministic function); afterwards, failures included, each
    module's train/eval flag and each parameter's ``requires_grad`` are as they were."""
    training = [(module, module.training) for module in model.modules()]
    requires_grad = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    try:
        model.eval()
        yield
    finally:
        for module, was_training in training:
            module.training = was_training
        for parameter, required in requires_grad:
            parameter.requires_grad_(required)
