"""Executes the tutorial sources into their notebooks, and checks that the committed
notebooks come from their sources.

Each tutorial is a jupytext percent-format source, ``tutorials/NN_name.py`` (``# %%``
code cells, ``# %% [markdown]`` cells), paired with its executed notebook
``tutorials/NN_name.ipynb``, which is committed with its outputs and rendered into the
documentation without being executed again.

Usage (from the repository root)::

    python tutorials/notebooks.py                  # execute every source, write its notebook
    python tutorials/notebooks.py 01 04            # only the tutorials whose names start so
    python tutorials/notebooks.py --check          # execute, compare with the committed notebooks, write nothing
    python tutorials/notebooks.py --figures DIR    # also write every figure to DIR as PNG

Every source runs in a fresh kernel of the Python that runs this script, with this
checkout first on ``PYTHONPATH``, in an empty temporary folder, offline
(``HF_HUB_OFFLINE=1``), with ``MPLBACKEND=Agg``, ``PYTHONHASHSEED=0`` and, unless set, ``OMP_NUM_THREADS=1`` (the sources
seed torch, numpy and ``random`` themselves). Writing also copies the figure of the
cell tagged ``index-figure`` to ``docs/_static/interaction_figure.png``, the figure on
the documentation's front page.

``--check`` (and ``tests/test_tutorials.py``, which uses the same functions) fails when
a notebook's cells are not its source's, or when its outputs are not what a fresh
execution gives: text exactly, once the run-dependent parts are masked (see
:func:`mask`), and figures by their decoded pixels (see :func:`image_difference`).
"""

import argparse
import base64
import contextlib
import difflib
import glob
import io
import json
import os
import re
import sys
import tempfile
import time
from typing import Dict, Iterator, List, Optional

import jupytext
import nbformat
import numpy as np
from nbclient import NotebookClient
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INDEX_FIGURE = os.path.join(ROOT, "docs", "_static", "interaction_figure.png")
INDEX_TAG = "index-figure"
CELL_TIMEOUT = 900  # seconds
KERNEL_NAME = "captum-bilinear-tutorials"
#: Set in the kernel's environment; the sources add the seeds of torch, numpy and random.
KERNEL_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MPLBACKEND": "Agg",
    "PYTHONHASHSEED": "0",
}
#: Cell metadata that says when a cell ran, not what it is: not written, not compared.
RUN_METADATA = ("execution", "ExecuteTime")

#: Figures match when they have the same size, their mean absolute difference is at most
#: MEAN_TOLERANCE (of the full 0-255 range, over all pixels and channels), and at most
#: CHANGED_PIXELS_TOLERANCE of the pixels differ by more than CHANGED_PIXEL_LEVEL in a
#: channel. Matplotlib's Agg renderer draws the same pixels from the same data, so a
#: fresh run differs from its committed figure by 0; the tolerances absorb
#: anti-aliasing changes of another matplotlib or freetype, not a changed heat map, colour
#: scale, marker or label (see tests/test_tutorials.py for what they catch).
MEAN_TOLERANCE = 0.002
CHANGED_PIXEL_LEVEL = 64
CHANGED_PIXELS_TOLERANCE = 0.0005


def sources(prefixes: Optional[List[str]] = None) -> List[str]:
    """Paths of the tutorial sources ``tutorials/NN_*.py``, or of those whose names start
    with one of ``prefixes``."""
    paths = sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.py")))
    if prefixes:
        paths = [p for p in paths if any(os.path.basename(p).startswith(prefix) for prefix in prefixes)]
    return paths


def notebook_path(source: str) -> str:
    """The notebook paired with ``source``."""
    return os.path.splitext(source)[0] + ".ipynb"


def read_source(source: str) -> nbformat.NotebookNode:
    """The notebook of a percent-format source, without outputs; cell ids follow the cell
    order, so that a regenerated notebook differs from the last one only where it changed."""
    notebook = jupytext.read(source, fmt="py:percent")
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:02d}"
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


@contextlib.contextmanager
def kernel_environment() -> Iterator[str]:
    """A kernelspec that starts this very Python (first on ``JUPYTER_PATH``), the
    environment the kernel inherits, and an empty folder to run in (its path is yielded);
    the process environment is restored afterwards."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="tutorials-") as folder:
        spec_dir = os.path.join(folder, "jupyter", "kernels", KERNEL_NAME)
        os.makedirs(spec_dir)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "captum-bilinear tutorials", "language": "python"}
        with open(os.path.join(spec_dir, "kernel.json"), "w") as out:
            json.dump(spec, out)
        run_dir = os.path.join(folder, "run")
        os.makedirs(run_dir)
        os.environ.update(KERNEL_ENVIRONMENT)
        # One thread unless told otherwise, as in the tests: CI runs two jobs on two cores,
        # where torch's default of a thread per core spent 2-10x the time waiting on its
        # own threads (tutorial 01: 647 s against 103 s).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ["JUPYTER_PATH"] = os.path.join(folder, "jupyter")
        os.environ["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [saved.get("PYTHONPATH")] if p])
        try:
            yield run_dir
        finally:
            os.environ.clear()
            os.environ.update(saved)


def execute(source: str) -> nbformat.NotebookNode:
    """``source`` executed top to bottom in a fresh kernel (see the module docstring);
    raises ``nbclient.exceptions.CellExecutionError`` if a cell fails."""
    notebook = read_source(source)
    with kernel_environment() as run_dir:
        NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name=KERNEL_NAME,
                       resources={"metadata": {"path": run_dir}}).execute()
    for cell in notebook.cells:
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def write(notebook: nbformat.NotebookNode, path: str) -> None:
    """Writes an executed notebook (jupytext keeps its pairing metadata)."""
    jupytext.write(notebook, path, fmt="ipynb")


def figures(notebook: nbformat.NotebookNode) -> Iterator[tuple]:
    """``(cell index, output index, tags, png bytes)`` of every image output."""
    for index, cell in enumerate(notebook.cells):
        for number, output in enumerate(cell.get("outputs", [])):
            png = output.get("data", {}).get("image/png")
            if png:
                yield index, number, cell.metadata.get("tags", []), base64.b64decode(png)


# -- comparison ----------------------------------------------------------------------

#: Run-dependent parts of text outputs and what replaces them. Durations change from run
#: to run and machine to machine; a memory address with every process; the folders of a
#: file path (in a warning, a repr) with the checkout and the environment; a progress
#: bar's elapsed time, remaining time and rate with the machine's load. Nothing else is
#: masked: every printed table and label must be reproduced, its numbers within round-off
#: (:func:`numbers_match`).
MASKS = (
    (re.compile(r"\[\d+:\d+(?::\d+)?<[^\]]*\]"), "[<time>]"),            # tqdm: [00:03<00:05, 1.2it/s]
    (re.compile(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?(\s*)(s|ms|min)\b"), r"<duration>\1\2"),  # 7.8 s, 120 ms
    (re.compile(r"\b0x[0-9a-fA-F]{4,}\b"), "0x<address>"),
    (re.compile(r"(?<![\w.])/(?:[^\s/:'\"<>]+/)+"), "<folder>/"),
)


def mask(text: str) -> str:
    """``text`` with its run-dependent parts replaced (see :data:`MASKS`), and with what
    a carriage return overwrote (a progress bar's earlier states) removed."""
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.replace("\r\n", "\n").split("\n"))
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def _merged_streams(outputs: List[dict]) -> List[dict]:
    """Consecutive stream outputs of one name joined: where a kernel splits a stream
    into messages depends on timing, not on the cell."""
    merged: List[dict] = []
    for output in outputs:
        if (output.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == output.get("name")):
            merged[-1] = dict(merged[-1], text=merged[-1]["text"] + output["text"])
        else:
            merged.append(dict(output))
    return merged


def _decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.int16)


def image_difference(committed_png: bytes, fresh_png: bytes) -> Optional[str]:
    """None if two PNG figures show the same picture, else what differs: compares the
    decoded pixels (PNG encoders write the same pixels in different bytes), see
    :data:`MEAN_TOLERANCE`."""
    committed, fresh = _decoded(committed_png), _decoded(fresh_png)
    if committed.shape != fresh.shape:
        return f"size {committed.shape[1]}x{committed.shape[0]} committed, {fresh.shape[1]}x{fresh.shape[0]} now"
    difference = np.abs(committed - fresh)
    mean = difference.mean() / 255
    changed = (difference.max(axis=-1) > CHANGED_PIXEL_LEVEL).mean()
    if mean > MEAN_TOLERANCE or changed > CHANGED_PIXELS_TOLERANCE:
        return (f"pixels differ: mean |difference| {mean:.4f} of full scale (tolerance {MEAN_TOLERANCE}), "
                f"{changed:.2%} of the pixels changed by more than {CHANGED_PIXEL_LEVEL}/255 "
                f"(tolerance {CHANGED_PIXELS_TOLERANCE:.2%})")
    return None


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


#: Printed numbers are compared within float32 round-off *across CPUs*: the same code gives
#: other low digits on another processor's BLAS kernels (seen on this project's machines:
#: a delta of 7.15e-07 printed as 4.77e-07, InteractionCAM's ~1e-8 products flipping a
#: top patch and moving a curve area from 0.322 to 0.319). Two numbers match when they
#: differ by at most ``NUMBER_ABSOLUTE_TOLERANCE``, ``NUMBER_RELATIVE_TOLERANCE`` of the
#: larger or 1.5 units of the last printed digit; integers (counts, shapes, steps), every
#: word and the layout must match exactly.
NUMBER_ABSOLUTE_TOLERANCE = 1e-6
NUMBER_RELATIVE_TOLERANCE = 1e-2
_NUMBER = re.compile(r"[+-]?\d+(?:\.(\d+))?(?:[eE]([+-]?\d+))?")


def _last_digit_unit(match: "re.Match[str]") -> float:
    decimals, exponent = match.group(1), match.group(2)
    return 10.0 ** (-(len(decimals) if decimals else 0) + (int(exponent) if exponent else 0))


def numbers_match(committed: str, fresh: str) -> bool:
    """Whether two masked texts are the same but for printed numbers within round-off
    (see :data:`NUMBER_RELATIVE_TOLERANCE`)."""
    old, new = list(_NUMBER.finditer(committed)), list(_NUMBER.finditer(fresh))
    if len(old) != len(new) or " ".join(_NUMBER.split(committed)[::3]).split() != " ".join(
            _NUMBER.split(fresh)[::3]).split():
        return False
    for a, b in zip(old, new):
        if a.group(1) is None and a.group(2) is None and b.group(1) is None and b.group(2) is None:
            if a.group(0) != b.group(0):  # counts, shapes, steps: exact
                return False
            continue
        x, y = float(a.group(0)), float(b.group(0))
        allowed = max(NUMBER_ABSOLUTE_TOLERANCE, NUMBER_RELATIVE_TOLERANCE * max(abs(x), abs(y)),
                      1.5 * max(_last_digit_unit(a), _last_digit_unit(b)))
        if abs(x - y) > allowed:
            return False
    return True


def _text_difference(committed: str, fresh: str) -> Optional[str]:
    committed, fresh = mask(committed), mask(fresh)
    if committed == fresh or numbers_match(committed, fresh):
        return None
    lines = difflib.unified_diff(committed.splitlines(), fresh.splitlines(), "committed", "fresh run", lineterm="", n=1)
    return "\n".join(list(lines)[:40])


def _output_difference(committed: dict, fresh: dict) -> Optional[str]:
    kind = committed.get("output_type")
    if kind != fresh.get("output_type") or committed.get("name") != fresh.get("name"):
        return f"a {kind} {committed.get('name', '')} output committed, a {fresh.get('output_type')} {fresh.get('name', '')} now"
    if kind == "stream":
        return _text_difference(_text(committed["text"]), _text(fresh["text"]))
    if kind == "error":
        return f"an error output: {committed.get('ename')}"
    committed_data, fresh_data = committed.get("data", {}), fresh.get("data", {})
    if sorted(committed_data) != sorted(fresh_data):
        return f"output types {sorted(committed_data)} committed, {sorted(fresh_data)} now"
    for mime in sorted(committed_data):
        if mime == "image/png":
            found = image_difference(base64.b64decode(committed_data[mime]), base64.b64decode(fresh_data[mime]))
        elif mime.startswith("text/"):
            found = _text_difference(_text(committed_data[mime]), _text(fresh_data[mime]))
        else:
            found = None if committed_data[mime] == fresh_data[mime] else "differs"
        if found:
            return f"{mime}: {found}"
    return None


def _cell_label(index: int, cell) -> str:
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return f"cell {index} ({first[:60]!r})"


def source_differences(notebook: nbformat.NotebookNode, source: str) -> List[str]:
    """Where ``notebook``'s cells (type, source, metadata but the run's) are not those of
    the percent-format ``source`` (the jupytext pairing)."""
    expected = read_source(source).cells
    problems = []
    if len(expected) != len(notebook.cells):
        problems.append(f"{len(notebook.cells)} cells in the notebook, {len(expected)} in the source")
    for index, (cell, wanted) in enumerate(zip(notebook.cells, expected)):
        metadata = {k: v for k, v in cell.metadata.items() if k not in RUN_METADATA}
        if (cell.cell_type, cell.source, metadata) != (wanted.cell_type, wanted.source, dict(wanted.metadata)):
            diff = difflib.unified_diff(wanted.source.splitlines(), cell.source.splitlines(), "source", "notebook",
                                        lineterm="", n=1)
            problems.append(f"{_cell_label(index, wanted)} is not the source's ({cell.cell_type} / {wanted.cell_type}, "
                            f"metadata {metadata} / {dict(wanted.metadata)}):\n" + "\n".join(list(diff)[:20]))
    return problems


def output_differences(committed: nbformat.NotebookNode, fresh: nbformat.NotebookNode) -> List[str]:
    """Where the committed notebook's outputs are not those of a fresh execution of the
    same cells, one message per cell (see :func:`mask` and :func:`image_difference`)."""
    problems = []
    if len(committed.cells) != len(fresh.cells):
        return [f"{len(committed.cells)} cells committed, {len(fresh.cells)} executed"]
    code_cells = [(index, old, new) for index, (old, new) in enumerate(zip(committed.cells, fresh.cells))
                  if new.cell_type == "code"]
    counts = [old.get("execution_count") for _, old, _ in code_cells]
    if counts != list(range(1, len(code_cells) + 1)):
        problems.append(f"the committed notebook was not executed top to bottom in one run: execution counts {counts}")
    for index, old, new in code_cells:
        old_outputs, new_outputs = _merged_streams(old.get("outputs", [])), _merged_streams(new.get("outputs", []))
        if len(old_outputs) != len(new_outputs):
            problems.append(f"{_cell_label(index, new)}: {len(old_outputs)} outputs committed, {len(new_outputs)} now "
                            f"({[o.get('output_type') for o in old_outputs]} / {[o.get('output_type') for o in new_outputs]})")
            continue
        for number, (old_output, new_output) in enumerate(zip(old_outputs, new_outputs)):
            found = _output_difference(old_output, new_output)
            if found:
                problems.append(f"{_cell_label(index, new)}, output {number}: {found}")
    return problems


def index_figure(notebook: nbformat.NotebookNode) -> Optional[bytes]:
    """The PNG of the cell tagged ``index-figure``, if the notebook has one."""
    return next((png for _, _, tags, png in figures(notebook) if INDEX_TAG in tags), None)


# -- command line --------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="tutorial name prefixes, e.g. 01 04 (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="execute and compare with the committed notebooks; write nothing")
    parser.add_argument("--figures", help="write every figure of the executed notebooks to this folder")
    args = parser.parse_args(argv)
    paths = sources(args.names)
    if not paths:
        parser.error(f"no tutorial source matches {args.names}")
    failures: Dict[str, List[str]] = {}
    for source in paths:
        name = os.path.splitext(os.path.basename(source))[0]
        start = time.perf_counter()
        notebook = execute(source)
        print(f"{name}: executed in {time.perf_counter() - start:.0f} s", flush=True)
        if args.figures:
            os.makedirs(args.figures, exist_ok=True)
            for index, number, _, png in figures(notebook):
                with open(os.path.join(args.figures, f"{name}_cell{index:02d}_{number}.png"), "wb") as out:
                    out.write(png)
        if args.check:
            committed = nbformat.read(notebook_path(source), as_version=4)
            failures[name] = source_differences(committed, source) + output_differences(committed, notebook)
            for problem in failures[name]:
                print(f"  {problem}")
            continue
        write(notebook, notebook_path(source))
        png = index_figure(notebook)
        if png is not None:
            with open(INDEX_FIGURE, "wb") as out:
                out.write(png)
    if args.check:
        stale = [name for name, problems in failures.items() if problems]
        print("every notebook comes from its source" if not stale else f"stale: {', '.join(stale)} "
              "(run python tutorials/notebooks.py)")
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
