"""Importing an optional library for its adapter's tests: skipped where it is not
installed, except in the run made for it (``make test-extras`` sets
``CAPTUM_BILINEAR_REQUIRE_EXTRAS``), where a failed import fails the run."""

import importlib
import os
from types import ModuleType

import pytest

REQUIRED = bool(os.environ.get("CAPTUM_BILINEAR_REQUIRE_EXTRAS"))


def import_optional(name: str) -> ModuleType:
    if REQUIRED:
        return importlib.import_module(name)
    try:
        return importlib.import_module(name)
    except Exception as error:  # open_clip's torchvision fails with RuntimeError beside torch 2.13 CPU
        pytest.skip(f"{name} does not import here ({type(error).__name__}); make test-extras runs these tests",
                    allow_module_level=True)
