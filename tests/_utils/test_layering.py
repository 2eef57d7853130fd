"""``captum_bilinear._utils`` sits below everything: none of its modules imports another
part of the package (absolute or relative), at module level or inside a function."""

import ast
import os
from typing import Iterator, Optional, Tuple

import captum_bilinear._utils

PACKAGE = "captum_bilinear"
UTILS = f"{PACKAGE}._utils"
UTILS_DIR = os.path.dirname(captum_bilinear._utils.__file__)


def _resolve(module: Optional[str], level: int, importer: str) -> str:
    """The absolute name of ``from <level dots><module> import ...`` in ``importer``."""
    if level == 0:
        return module or ""
    package = importer.split(".")[:-1]  # `a.b.c` and `a.b.__init__` are in package `a.b`
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def upward_imports(source: str, importer: str) -> Iterator[Tuple[int, str]]:
    """``(line, module)`` of every import in ``source`` (of module ``importer``) that
    reaches a ``captum_bilinear`` module outside ``captum_bilinear._utils``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node.module, node.level, importer)
            # `from captum_bilinear import x` / `from . import x`: each x is a module or a name of it
            names = [f"{target}.{alias.name}" for alias in node.names] if target in (PACKAGE, UTILS) else [target]
        else:
            continue
        for name in names:
            inside_package = name == PACKAGE or name.startswith(PACKAGE + ".")
            if inside_package and not (name == UTILS or name.startswith(UTILS + ".")):
                yield node.lineno, name


def test_upward_imports_are_found():
    """The check can fail: every way of reaching above ``_utils`` is caught, imports
    within ``_utils`` are not."""
    importer = f"{UTILS}.pair_inputs"
    caught = [
        "from captum_bilinear.encoders import as_dual_encoder",
        "import captum_bilinear.terms",
        "from captum_bilinear import games",
        "from .. import registry",
        "from ..encoders import DualEncoder",
        "def f():\n    from captum_bilinear._core.base import DualLayerAttribution",
    ]
    for source in caught:
        assert list(upward_imports(source, importer)), source
    allowed = [
        "from captum_bilinear._utils.checks import check_int",
        "from . import checks",
        "from .checks import check_int",
        "import captum_bilinear._utils.positions",
        "import torch",
    ]
    for source in allowed:
        assert not list(upward_imports(source, importer)), source


def test_no_utils_module_imports_upward():
    found = []
    for directory, _, files in os.walk(UTILS_DIR):
        for file in sorted(files):
            if not file.endswith(".py"):
                continue
            path = os.path.join(directory, file)
            relative = os.path.relpath(path, UTILS_DIR)[: -len(".py")].replace(os.sep, ".")
            with open(path, encoding="utf-8") as handle:
                source = handle.read()
            found += [f"{relative}.py:{line} imports {name}" for line, name in upward_imports(source, f"{UTILS}.{relative}")]
    assert not found, "captum_bilinear._utils must not import the package above it:\n" + "\n".join(found)
