"""Argument types of the command line, shared by its subcommands (argparse only, so
that ``--help`` loads nothing heavy)."""

import argparse
from typing import Union

from captum_bilinear._utils.step_limit import MAX_STEPS


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def step_count(text: str) -> Union[int, str]:
    """A positive int up to :data:`~captum_bilinear._utils.step_limit.MAX_STEPS` (the
    library's limit, also for Captum's LayerIntegratedGradients, which has none) or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}") from None
    if value > MAX_STEPS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_STEPS} nodes per path integral, got {value} "
                                         "('auto' chooses the nodes for --tolerance)")
    return value


def layer_choice(text: str) -> Union[int, str]:
    """``embeddings`` or an encoder layer index."""
    if text.strip().lower() == "embeddings":
        return "embeddings"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'embeddings' or an encoder layer index, got {text!r}") from None
