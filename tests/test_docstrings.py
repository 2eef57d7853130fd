"""Every module's docstring examples run and print what they claim, and every public name
is documented with an example."""

import dataclasses
import doctest
import importlib
import inspect
import pkgutil

import pytest

import captum_bilinear

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(captum_bilinear.__path__, prefix="captum_bilinear.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert failures == 0


PUBLIC_MODULES = [
    "captum_bilinear", "captum_bilinear.metrics", "captum_bilinear.zoo", "captum_bilinear.evaluation",
    "captum_bilinear.selection", "captum_bilinear.visualization", "captum_bilinear.references",
    "captum_bilinear.explain", "captum_bilinear.loading", "captum_bilinear.first_order", "captum_bilinear.encoders", "captum_bilinear.datasets",
    "captum_bilinear.terms", "captum_bilinear.games", "captum_bilinear.images", "captum_bilinear.registry",
    "captum_bilinear.adapters", "captum_bilinear.adapters.hf", "captum_bilinear.adapters.open_clip",
    "captum_bilinear.adapters.sentence_transformers",
    "captum_bilinear.adapters.hf_clip", "captum_bilinear.adapters.hf_siglip", "captum_bilinear.adapters.hf_siglip2",
    "captum_bilinear.adapters.hf_altclip", "captum_bilinear.adapters.hf_chinese_clip", "captum_bilinear.adapters.hf_align",
    "captum_bilinear.adapters.hf_blip", "captum_bilinear.adapters.hf_clap",
]


def _public_names(module):
    if hasattr(module, "__all__"):
        return module.__all__
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__ == module.__name__]


@pytest.mark.parametrize("package", PUBLIC_MODULES)
def test_public_names_have_docstrings_with_examples(package):
    module = importlib.import_module(package)
    for name in _public_names(module):
        documented = getattr(module, name)
        if not callable(documented):
            continue
        assert documented.__doc__, f"{package}.{name} has no docstring"
        # Result containers are shown by the examples of the functions that return them.
        is_result = dataclasses.is_dataclass(documented) or hasattr(documented, "_fields")
        assert is_result or ">>>" in documented.__doc__, f"{package}.{name} has no runnable example"
