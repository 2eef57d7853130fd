"""Argument types of the command line, shared by its subcommands (argparse only, so
that ``--help`` loads nothing heavy)."""

import argparse
from typing import Union


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
    """A positive int or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}") from None


def layer_choice(text: str) -> Union[int, str]:
    """``embeddings`` or an encoder layer index."""
    if text.strip().lower() == "embeddings":
        return "embeddings"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'embeddings' or an encoder layer index, got {text!r}") from None
