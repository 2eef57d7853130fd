"""The docstring examples of every metrics module run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = [
    "captum_bilinear.metrics.completeness",
    "captum_bilinear.metrics.maps",
    "captum_bilinear.metrics.pointing_game",
    "captum_bilinear.metrics.insertion_deletion",
    "captum_bilinear.metrics.masking",
    "captum_bilinear.metrics.faithfulness",
    "captum_bilinear.metrics.discrimination",
    "captum_bilinear.metrics.summary",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failures, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0, f"{name} has no examples"
    assert failures == 0


def test_public_names_are_exported():
    import captum_bilinear.metrics as metrics

    for name in metrics.__all__:
        assert hasattr(metrics, name), name
        assert getattr(metrics, name).__doc__, f"{name} has no docstring"
