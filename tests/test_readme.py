"""The README's Python blocks run as written (with the bundled model, nothing downloaded),
one after the other as a reader pastes them, in a scratch directory."""

import os
import re
import warnings

import matplotlib
import pytest

from captum_bilinear.zoo.siglip2 import siglip2_available

matplotlib.use("Agg")

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def python_blocks(text: str):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_has_python_blocks():
    with open(README, encoding="utf-8") as f:
        assert len(python_blocks(f.read())) >= 1


def test_every_python_block_runs_as_written(tmp_path, monkeypatch):
    with open(README, encoding="utf-8") as f:
        blocks = python_blocks(f.read())
    monkeypatch.chdir(tmp_path)  # figures the blocks write land here, not in the repository
    namespace = {"__name__": "__readme__"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for number, block in enumerate(blocks, 1):
            if "load_demo_siglip2" in block and not siglip2_available():
                continue  # transformers 4.45 has no Siglip2Model: its block is skipped there
            try:
                exec(compile(block, f"README.md python block {number}", "exec"), namespace)
            except Exception as error:  # noqa: BLE001 - the block and its error are the report
                pytest.fail(f"README python block {number} failed: {type(error).__name__}: {error}\n{block}")
    # the README's own example needs none of the package's warnings (unknown words, a cut caption, a crop)
    ours = [str(w.message) for w in caught if str(w.message).split(":")[0] in ("caption", "image_path", "box", "span")]
    assert ours == []
    written = [name for name in os.listdir(tmp_path) if name.endswith(".png")]
    assert written, "the README's blocks draw no figure"
    from PIL import Image

    for name in written:
        with Image.open(tmp_path / name) as figure:
            assert figure.size[0] > 200 and figure.size[1] > 100
