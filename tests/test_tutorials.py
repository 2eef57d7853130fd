"""The tutorials: percent-format sources that lint clean, each paired with a committed
notebook whose cells are the source's and whose outputs a fresh execution reproduces.

The executions (one fresh kernel per tutorial, see ``tutorials/notebooks.py``) are the
slow part; the comparison they end in is tested on its own below, on figures and
outputs made here, so that a check that passes is known to be able to fail.
"""

import base64
import importlib.util
import io
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pyflakes.api  # noqa: E402
import pyflakes.reporter  # noqa: E402
import pytest  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402
from nbformat.v4 import new_code_cell, new_notebook, new_output  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = os.path.join(ROOT, "tutorials")


def _tooling():
    """``tutorials/notebooks.py`` as a module (no bytecode written next to it)."""
    spec = importlib.util.spec_from_file_location("tutorial_notebooks", os.path.join(TUTORIALS, "notebooks.py"))
    module = importlib.util.module_from_spec(spec)
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


notebooks = _tooling()
SOURCES = notebooks.sources()
NAMES = [os.path.splitext(os.path.basename(path))[0] for path in SOURCES]


def _committed(name):
    return nbformat.read(os.path.join(TUTORIALS, f"{name}.ipynb"), as_version=4)


def test_every_tutorial_is_a_source_beside_its_notebook():
    assert len(NAMES) >= 5, NAMES
    notebook_names = sorted(name[: -len(".ipynb")] for name in os.listdir(TUTORIALS) if name.endswith(".ipynb"))
    assert notebook_names == NAMES, "every notebook needs its percent-format source and every source its notebook"
    for path in SOURCES:
        with open(path, encoding="utf-8") as source:
            text = source.read()
        assert "# %%" in text and "# %% [markdown]" in text, f"{path} is not in jupytext's percent format"


def test_tutorial_sources_lint_clean():
    """pyflakes over every file of ``tutorials/`` (undefined names, unused imports,
    unused variables, ...): the sources are plain Python, notebook magics are comments."""
    out, err = io.StringIO(), io.StringIO()
    reporter = pyflakes.reporter.Reporter(out, err)
    paths = sorted(os.path.join(TUTORIALS, name) for name in os.listdir(TUTORIALS) if name.endswith(".py"))
    warnings = sum(pyflakes.api.checkPath(path, reporter) for path in paths)
    assert warnings == 0 and not err.getvalue(), out.getvalue() + err.getvalue()


@pytest.mark.parametrize("name", NAMES)
def test_notebook_cells_are_its_source(name):
    """The jupytext pairing: the committed notebook has the source's cells, in order,
    with the same text and tags (rerun ``python tutorials/notebooks.py`` after editing)."""
    problems = notebooks.source_differences(_committed(name), os.path.join(TUTORIALS, f"{name}.py"))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_outputs_come_from_its_source(name):
    """Executes the source in a fresh kernel and compares every output with the
    committed one: text after masking durations, addresses and folders, figures by
    pixels. A figure that no longer matches what its cell draws fails here."""
    try:
        fresh = notebooks.execute(os.path.join(TUTORIALS, f"{name}.py"))
    except CellExecutionError as error:
        pytest.fail(f"{name}.py: a cell failed:\n{error}")
    committed = _committed(name)
    problems = notebooks.output_differences(committed, fresh)
    assert not problems, f"{name}.ipynb is stale (run python tutorials/notebooks.py {name[:2]}):\n" + "\n".join(problems)
    assert list(notebooks.figures(committed)), f"{name}.ipynb has no figure"


def test_front_page_figure_is_the_tagged_tutorial_figure():
    """docs/_static/interaction_figure.png is the figure of the cell tagged index-figure."""
    tagged = [png for name in NAMES if (png := notebooks.index_figure(_committed(name))) is not None]
    assert len(tagged) == 1, f"{len(tagged)} cells tagged {notebooks.INDEX_TAG!r}, expected one"
    with open(notebooks.INDEX_FIGURE, "rb") as figure:
        assert notebooks.image_difference(figure.read(), tagged[0]) is None


# -- the comparison can fail ---------------------------------------------------------


def _heatmap_png(values, vmax=1.0, title="span 'red cross'", box=None, dpi=100):
    """A figure like the tutorials' heat maps, as PNG bytes."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow(values, cmap="bwr", vmin=-vmax, vmax=vmax)
    if box is not None:
        x0, y0, x1, y1 = box
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="lime"))
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def heatmap():
    return np.random.default_rng(0).normal(size=(8, 8)) * 0.5


def test_image_comparison_accepts_the_same_picture_in_other_bytes(heatmap):
    png = _heatmap_png(heatmap)
    assert notebooks.image_difference(png, _heatmap_png(heatmap)) is None
    pixels = Image.open(io.BytesIO(png))
    recoded = io.BytesIO()
    pixels.save(recoded, format="png", compress_level=1, optimize=False)
    assert recoded.getvalue() != png
    assert notebooks.image_difference(png, recoded.getvalue()) is None


def test_image_comparison_rejects_a_changed_figure(heatmap):
    """Each change a stale tutorial figure could have: other values, another colour
    scale, a moved box, one changed value, another label, another size."""
    png = _heatmap_png(heatmap, box=(1, 1, 3, 3))
    one_value = heatmap.copy()
    one_value[4, 4] = -one_value[4, 4]
    changed = {
        "values": _heatmap_png(np.roll(heatmap, 1, axis=0), box=(1, 1, 3, 3)),
        "colour scale": _heatmap_png(heatmap, vmax=0.8, box=(1, 1, 3, 3)),
        "box": _heatmap_png(heatmap, box=(2, 1, 4, 3)),
        "one patch": _heatmap_png(one_value, box=(1, 1, 3, 3)),
        "title": _heatmap_png(heatmap, box=(1, 1, 3, 3), title="span 'red circle'"),
        "size": _heatmap_png(heatmap, box=(1, 1, 3, 3), dpi=90),
    }
    for what, other in changed.items():
        assert notebooks.image_difference(png, other) is not None, what


def test_numbers_match_within_round_off_only():
    assert notebooks.numbers_match("n 256  +7.15e-07  0.0001%  0.322", "n 256  +4.77e-07  0.0000%  0.319")
    assert not notebooks.numbers_match("n 256  +7.15e-07", "n 128  +7.15e-07")  # integers exactly
    assert not notebooks.numbers_match("PGA 0.500", "PGA 0.583")
    assert not notebooks.numbers_match("delta 1.0e-03", "delta 1.0e-04")
    assert not notebooks.numbers_match("BII 0.5", "ICAM 0.5")


def test_masking_hides_only_run_dependent_text():
    masked = notebooks.mask("A: (1, 17, 65) in 7.8 s\nBII 0.7 s, 120 ms\n<object at 0x7f5ce20fc8d0>\n"
                            "/work/main/captum_bilinear/encoders.py:12: UserWarning\n 40%|####| 2/5 [00:03<00:05, 1.2it/s]"
                            "\r100%|##########| 5/5 [00:07<00:00, 1.4it/s]\n")
    assert masked == ("A: (1, 17, 65) in <duration> s\nBII <duration> s, <duration> ms\n<object at 0x<address>>\n"
                      "<folder>/encoders.py:12: UserWarning\n100%|##########| 5/5 [<time>]\n")
    kept = "delta -3.00e-04, 6 pairs, 4 scenes, |delta| / |identity| 18.18%, seconds/pair 1/255, 8x8 patches"
    assert notebooks.mask(kept) == kept


def _executed(*outputs):
    notebook = new_notebook(cells=[new_code_cell("print(1)")])
    notebook.cells[0].outputs = list(outputs)
    notebook.cells[0].execution_count = 1
    return notebook


def _figure_output(png):
    return new_output("display_data", data={"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"})


def test_output_comparison(heatmap):
    png = _heatmap_png(heatmap)
    committed = _executed(new_output("stream", name="stdout", text="delta -3.00e-04 in 7.8 s\n"), _figure_output(png))
    same = _executed(new_output("stream", name="stdout", text="delta -3.00e-04 "),
                     new_output("stream", name="stdout", text="in 9.1 s\n"), _figure_output(png))
    assert notebooks.output_differences(committed, same) == []
    round_off = _executed(new_output("stream", name="stdout", text="delta -3.01e-04 in 7.8 s\n"), _figure_output(png))
    assert notebooks.output_differences(committed, round_off) == []  # another CPU's low digits
    other_number = _executed(new_output("stream", name="stdout", text="delta -3.10e-04 in 7.8 s\n"), _figure_output(png))
    other_figure = _executed(committed.cells[0].outputs[0], _figure_output(_heatmap_png(heatmap, vmax=0.5)))
    missing_figure = _executed(committed.cells[0].outputs[0])
    for fresh in (other_number, other_figure, missing_figure):
        assert len(notebooks.output_differences(committed, fresh)) == 1
    unexecuted = _executed(*committed.cells[0].outputs)
    unexecuted.cells[0].execution_count = None
    assert notebooks.output_differences(unexecuted, committed)
