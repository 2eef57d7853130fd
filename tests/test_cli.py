"""The command line: a figure from the bundled model, and one clear line for bad input."""

import os

import pytest
from PIL import Image

from captum_bilinear.cli import main
from captum_bilinear.zoo import generate_scene


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
    scene = generate_scene(3, mode="full")
    path = tmp_path_factory.mktemp("scene") / "scene.png"
    Image.fromarray(scene.image).save(path)
    return scene, str(path)


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_explain_writes_the_figure(scene_file, tmp_path, capsys):
    scene, path = scene_file
    words = " ".join(scene.objects[0].words)
    out = tmp_path / "figure.png"
    x0, y0, x1, y1 = scene.objects[0].box
    code, stdout, _ = run(capsys, "explain", "--image", path, "--caption", scene.caption, "--out", str(out),
                          "--span", words, "--box", f"{x0},{y0},{x1},{y1}", "--n-steps", "4")
    assert code == 0
    assert f'"{words}"' in stdout
    with Image.open(out) as figure:
        assert figure.format == "PNG" and figure.size[0] > figure.size[1] > 100


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--image", "{missing}"], "--image: no such file"),
        (["--image", "{garbage}"], "--image: cannot read"),
        (["--span", "zebra"], "--span: 'zebra' is not in the caption"),
        (["--box", "0,0,65,10"], "--box: (0.0, 0.0, 65.0, 10.0) is not inside the 64x64 image"),
        (["--box", "0,0,10"], "argument --box: expected X0,Y0,X1,Y1"),
        (["--method", "gradcam"], "argument --method: invalid choice: 'gradcam'"),
        (["--n-steps", "0"], "argument --n-steps: expected a positive integer"),
        (["--model", "{missing}"], "--model: cannot load"),
        (["--model", "{bert}"], "is a BertModel, not a CLIP or SigLIP dual encoder"),
        (["--out", "/no/such/dir/figure.png"], "--out: the directory /no/such/dir does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(arguments, message, scene_file, tmp_path, capsys):
    scene, path = scene_file
    garbage = tmp_path / "garbage.png"
    garbage.write_text("not an image")
    bert = tmp_path / "bert"
    if "{bert}" in arguments:
        from conftest import make_bert

        make_bert().save_pretrained(bert)
    substitutions = {"{missing}": str(tmp_path / "missing"), "{garbage}": str(garbage), "{bert}": str(bert)}
    arguments = [substitutions.get(a, a) for a in arguments]
    base = {"--image": path, "--caption": scene.caption, "--out": str(tmp_path / "f.png")}
    for flag, value in zip(arguments[::2], arguments[1::2]):
        base[flag] = value
    argv = ["explain"] + [item for pair in base.items() for item in pair]
    if "argument" in message:  # rejected by the argument parser
        with pytest.raises(SystemExit) as raised:
            main(argv)
        assert raised.value.code == 2
    else:
        assert main(argv) == 2
    stderr = capsys.readouterr().err
    error_lines = [line for line in stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1 and message in error_lines[0], stderr
    assert "Traceback" not in stderr
    assert not os.path.exists(tmp_path / "f.png")
