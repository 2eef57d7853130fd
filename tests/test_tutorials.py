"""The tutorial notebooks run from top to bottom without an error.

Each notebook is copied into a temporary folder and executed there with nbclient in a
fresh kernel of this Python (offline: ``HF_HUB_OFFLINE=1``; ``MPLBACKEND=Agg``), so
nothing is written into the repository. A second check keeps the committed notebooks
in step with their generator, ``tutorials/make_notebooks.py``.
"""

import importlib.util
import json
import os
import shutil
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = os.path.join(ROOT, "tutorials")
NAMES = sorted(name[: -len(".ipynb")] for name in os.listdir(TUTORIALS) if name.endswith(".ipynb"))
KERNEL = "captum-bilinear-tests"
CELL_TIMEOUT = 900


def _generator():
    """``tutorials/make_notebooks.py`` as a module (no bytecode written next to it)."""
    spec = importlib.util.spec_from_file_location("make_notebooks", os.path.join(TUTORIALS, "make_notebooks.py"))
    module = importlib.util.module_from_spec(spec)
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


@pytest.fixture
def kernel_environment(tmp_path, monkeypatch):
    """A kernelspec that starts this very Python, found first on JUPYTER_PATH, and the
    environment the kernel inherits."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "captum-bilinear tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def test_there_are_tutorials():
    assert len(NAMES) >= 5, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_tutorial_runs(name, kernel_environment):
    workdir = kernel_environment / "run"
    workdir.mkdir()
    path = workdir / f"{name}.ipynb"
    shutil.copyfile(os.path.join(TUTORIALS, f"{name}.ipynb"), path)
    notebook = nbformat.read(str(path), as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{name}.ipynb: a cell failed:\n{error}")
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors, errors


@pytest.mark.parametrize("name", NAMES)
def test_tutorial_matches_its_generator(name):
    """The committed notebook has the cells ``make_notebooks.py`` writes (rerun
    ``python tutorials/make_notebooks.py --execute`` after changing it)."""
    generator = _generator()
    assert name in generator.NOTEBOOKS, f"{name}.ipynb has no generator in make_notebooks.py"
    expected = [(cell.cell_type, cell.source) for cell in generator.build(name).cells]
    committed = nbformat.read(os.path.join(TUTORIALS, f"{name}.ipynb"), as_version=4)
    assert [(cell.cell_type, cell.source) for cell in committed.cells] == expected
    assert "DESCRIPTION-" not in "".join(source for kind, source in expected if kind == "markdown"), \
        "a figure description is missing in make_notebooks.py"


@pytest.mark.parametrize("name", NAMES)
def test_committed_tutorial_has_outputs(name):
    """The documentation renders the notebooks without executing them."""
    notebook = nbformat.read(os.path.join(TUTORIALS, f"{name}.ipynb"), as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code_cells), "execute it: make_notebooks.py --execute"
    assert any("image/png" in output.get("data", {}) for cell in code_cells for output in cell.get("outputs", []))
