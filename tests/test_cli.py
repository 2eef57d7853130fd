"""The command line: a figure from the bundled model, what it did said on stderr, and one
clear line for bad input, found before any attribution runs."""

import os
import subprocess
import sys

import pytest
import transformers
from PIL import Image, ImageDraw

import captum_bilinear.explain as explain_module
import captum_bilinear.loading as loading_module
from captum_bilinear.cli import build_parser, main, methods_of
from captum_bilinear.registry import METHODS
from captum_bilinear.zoo import VOCABULARY, generate_scene

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
    scene = generate_scene(3, mode="full")
    path = tmp_path_factory.mktemp("scene") / "scene.png"
    Image.fromarray(scene.image).save(path)
    return scene, str(path)


@pytest.fixture(scope="module")
def wide_file(tmp_path_factory):
    """128 x 64 pixels: a red circle at the left border, a blue square at the right."""
    image = Image.new("RGB", (128, 64), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    draw.ellipse((2, 18, 30, 46), fill=(230, 20, 20))
    draw.rectangle((98, 18, 126, 46), fill=(20, 40, 230))
    path = tmp_path_factory.mktemp("wide") / "wide.png"
    image.save(path)
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def no_attribution(monkeypatch):
    """Bad input must be found before any method runs."""

    def attribution_ran(*args, **kwargs):
        raise AssertionError("an attribution method ran before the input was checked")

    monkeypatch.setattr(explain_module, "run_method", attribution_ran)
    monkeypatch.setattr(explain_module, "run_method_terms", attribution_ran)


def no_model_loading(monkeypatch):
    def model_loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(explain_module, "load_model", model_loaded)


def one_error_line(stderr, message):
    error_lines = [line for line in stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1 and message in error_lines[0], stderr
    assert "Traceback" not in stderr


def test_explain_writes_the_figure(scene_file, tmp_path, capsys):
    scene, path = scene_file
    words = " ".join(scene.objects[0].words)
    out = tmp_path / "figure.png"
    x0, y0, x1, y1 = scene.objects[0].box
    code, stdout, stderr = run(capsys, "explain", "--image", path, "--caption", scene.caption, "--out", str(out),
                               "--span", words, "--box", f"{x0},{y0},{x1},{y1}", "--n-steps", "4")
    assert code == 0
    assert f'"{words}"' in stdout and f"wrote {out}" in stdout
    with Image.open(out) as figure:
        assert figure.format == "PNG" and figure.size[0] > figure.size[1] > 100
    # one progress bar for the one long task: the model's weight loading shows none
    assert "Loading weights" not in stderr
    assert "image: used as it is (64x64)" in stderr


# --- issue 11.2: the bundled model's vocabulary ------------------------------------------


def test_words_outside_the_demo_vocabulary_are_named_with_the_vocabulary(scene_file, tmp_path, capsys):
    _, path = scene_file
    code, _, stderr = run(capsys, "explain", "--image", path, "--caption", "a dog on a sofa", "--out",
                          str(tmp_path / "f.png"), "--method", "itsm", "--n-steps", "2")
    assert code == 0
    warning = [line for line in stderr.splitlines() if "warning" in line and "dog" in line]
    assert len(warning) == 1, stderr
    assert "'sofa'" in warning[0] and "'on'" not in warning[0]  # "on" is a word of the scenes
    assert all(word in warning[0] for word in VOCABULARY if word.isalpha())


def test_python_path_warns_about_unknown_words():
    from captum_bilinear.zoo import load_demo_model

    _, tokenizer, _ = load_demo_model()
    unknown = sorted({"dog", "sofa"} - set(VOCABULARY))
    with pytest.warns(UserWarning) as record:
        encoded = explain_module.encode_caption(tokenizer, "a dog on a sofa")
    message = " ".join(str(w.message) for w in record)
    assert all(f"'{word}'" in message for word in unknown) and "circle" in message
    assert encoded["input_ids"].shape == (1, 12)  # encoded as the tokenizer does, pieces included


# --- issue 11.3: images that are not square ----------------------------------------------


def test_a_wide_image_says_how_it_was_fitted_and_pads_on_request(wide_file, tmp_path, capsys):
    out = str(tmp_path / "f.png")
    code, _, stderr = run(capsys, "explain", "--image", wide_file, "--caption", "a red circle and a blue square",
                          "--out", out, "--method", "itsm", "--n-steps", "2")
    assert code == 0
    assert "centre-cropped" in stderr and "--fit pad" in stderr
    # the circle's box at the left border is cut off by the centre crop ...
    code, _, stderr = run(capsys, "explain", "--image", wide_file, "--caption", "a red circle and a blue square",
                          "--out", out, "--box", "0,16,32,48", "--method", "itsm", "--n-steps", "2")
    assert code == 2
    one_error_line(stderr, "--box: (0.0, 16.0, 32.0, 48.0) lies outside the part of the image the model sees")
    # ... and kept by --fit pad, which says so
    code, _, stderr = run(capsys, "explain", "--image", wide_file, "--caption", "a red circle and a blue square",
                          "--out", out, "--box", "0,16,32,48", "--fit", "pad", "--method", "itsm", "--n-steps", "2")
    assert code == 0
    assert "padded 128x64 to 128x128" in stderr


def test_a_box_is_mapped_through_the_padding(wide_file):
    result = explain_module.explain_pair(wide_file, "a red circle and a blue square", box=(0, 16, 32, 48),
                                         fit="pad", method="itsm", n_steps=2, show_progress=False)
    # 128x64 padded to 128x128 (32 rows above and below), resized by 1/2: y -> (y + 32) / 2
    assert result.box == pytest.approx((0.0, 24.0, 16.0, 40.0))
    assert result.image.shape == (64, 64, 3)
    red, green, blue = (int(v) for v in result.image[32, 8])  # the circle's centre (16, 32) -> (8, 32)
    assert red > 150 and green < 100 and blue < 100


# --- issue 11.4: captions longer than the model reads --------------------------------------


def test_a_long_caption_is_cut_with_a_warning_and_the_figure_stays_bounded(scene_file, tmp_path, capsys):
    _, path = scene_file
    caption = " ".join(["a red circle and a blue square and a green star,"] * 50)  # 500 words
    out = tmp_path / "long.png"
    code, _, stderr = run(capsys, "explain", "--image", path, "--caption", caption, "--out", str(out),
                          "--method", "itsm", "--n-steps", "2")
    assert code == 0
    warning = [line for line in stderr.splitlines() if "warning" in line and "caption" in line]
    assert len(warning) == 1 and "32" in warning[0] and "cut" in warning[0], stderr
    with Image.open(out) as figure:
        assert figure.size[0] <= 3600 and figure.size[1] <= 2400, figure.size


def test_python_path_warns_about_a_cut_caption():
    from captum_bilinear.zoo import load_demo_model

    _, tokenizer, _ = load_demo_model()
    with pytest.warns(UserWarning, match="caption: 52 tokens .* at most 32"):
        encoded = explain_module.encode_caption(tokenizer, " ".join(["a red circle and"] * 12 + ["a star"]))
    assert encoded["input_ids"].shape == (1, 32)


# --- issue 11.5: errors before work -------------------------------------------------------


@pytest.mark.parametrize(
    "out, message",
    [
        ("{tmp}/figure.xyz", "--out: cannot write a .xyz file; expected one of"),
        ("{tmp}", "is a directory; expected a file name ending in"),
        ("{tmp}/figure", "has no file extension; expected a file name ending in"),
        ("/proc/figure.png", "--out: cannot write in /proc"),
        ("/no/such/dir/figure.png", "--out: the directory /no/such/dir does not exist"),
    ],
)
def test_a_bad_out_is_refused_before_any_work(out, message, scene_file, tmp_path, capsys, monkeypatch):
    _, path = scene_file
    no_model_loading(monkeypatch)
    out = out.replace("{tmp}", str(tmp_path))
    code, _, stderr = run(capsys, "explain", "--image", path, "--caption", "a red circle", "--out", out)
    assert code == 2
    one_error_line(stderr, message)
    assert os.listdir(tmp_path) == []


def test_a_box_without_a_patch_centre_is_refused_before_any_work(scene_file, tmp_path, capsys, monkeypatch):
    _, path = scene_file
    no_attribution(monkeypatch)
    code, _, stderr = run(capsys, "explain", "--image", path, "--caption", "a red circle", "--out",
                          str(tmp_path / "f.png"), "--box", "0,0,3,3")
    assert code == 2
    one_error_line(stderr, "--box: (0.0, 0.0, 3.0, 3.0) contains no patch centre of the 8x8 grid")


def test_a_missing_model_directory_is_named(scene_file, tmp_path, capsys, monkeypatch):
    _, path = scene_file
    missing = tmp_path / "no" / "model"
    code, _, stderr = run(capsys, "explain", "--image", path, "--caption", "a red circle", "--out",
                          str(tmp_path / "f.png"), "--model", str(missing))
    assert code == 2
    one_error_line(stderr, f"--model: there is no directory {missing}")


@pytest.mark.parametrize("model, message", [
    ("mymodels/clip", "--model: there is no directory mymodels/clip (the directory mymodels exists, so this is read "
                      "as a path, not as a hub id)"),
    ("./clip", "--model: there is no directory ./clip"),
    ("mymodels/clips/clip", "--model: there is no directory mymodels/clips/clip"),
])
def test_a_missing_relative_model_directory_is_named_not_sent_to_the_hub(model, message, scene_file, tmp_path, capsys,
                                                                         monkeypatch):
    """``mymodels/clip`` looks like a hub id, but with ``mymodels/`` in the working directory
    it is a path with a typo: say there is no such directory, without asking the hub."""
    _, path = scene_file
    (tmp_path / "mymodels").mkdir()
    monkeypatch.chdir(tmp_path)

    def hub_asked(*args, **kwargs):
        raise AssertionError("the hub was asked about a path")

    monkeypatch.setattr(loading_module, "_hub_unreachable", hub_asked)
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", hub_asked)
    code, _, stderr = run(capsys, "explain", "--image", path, "--caption", "a red circle", "--out",
                          str(tmp_path / "f.png"), "--model", model)
    assert code == 2
    one_error_line(stderr, message)


@pytest.mark.parametrize("hub, message", [
    ("offline", "the hub is offline (HF_HUB_OFFLINE)"),
    ("unreachable", "the hub (http://127.0.0.1:9) is unreachable"),
])
def test_a_hub_id_fails_at_once_when_the_hub_cannot_be_reached(hub, message, scene_file, tmp_path, capsys,
                                                              monkeypatch):
    """One line and no retries: the hub is never tried (from_pretrained is not called)."""
    import huggingface_hub.constants

    _, path = scene_file
    if hub == "offline":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there

    def download(*args, **kwargs):
        raise AssertionError("from_pretrained tried the hub")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", download)
    code, _, stderr = run(capsys, "explain", "--image", path, "--caption", "a red circle", "--out",
                          str(tmp_path / "f.png"), "--model", "no-such-org/no-such-clip")
    assert code == 2
    one_error_line(stderr, "--model: 'no-such-org/no-such-clip' is not in the local Hugging Face cache and " + message)
    if hub == "unreachable":  # it may have been meant as a path: say that there is none
        assert stderr.rstrip().endswith("; nor is there a directory no-such-org/no-such-clip"), stderr
    assert [line for line in stderr.splitlines() if not line.startswith(("loading ", "captum-bilinear"))] == [], stderr


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--image", "{missing}"], "--image: no such file"),
        (["--image", "{garbage}"], "garbage.png: cannot be read as an image"),
        (["--span", "zebra"], "--span: 'zebra' is not in the caption"),
        (["--box", "0,0,65,10"], "--box: (0.0, 0.0, 65.0, 10.0) reaches beyond the image of (height, width) = (64, 64) "
                                 "by up to 1 pixels"),
        (["--box", "70,0,80,10"], "--box: (70.0, 0.0, 80.0, 10.0) lies outside the image of (height, width) = (64, 64)"),
        (["--box", "0,0,10"], "argument --box: expected X0,Y0,X1,Y1"),
        (["--method", "gradcam"], "argument --method: invalid choice: 'gradcam'"),
        (["--n-steps", "0"], "argument --n-steps: expected a positive integer"),
        (["--layer", "top"], "argument --layer: expected 'embeddings' or an encoder layer index"),
        (["--layer", "9"], "--layer: the model has 6 layers (-6 .. 5) and 'embeddings', got 9"),
        (["--fit", "stretch"], "argument --fit: invalid choice: 'stretch'"),
        (["--model", "{bert}"], "is a BertModel, not a CLIP or SigLIP dual encoder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(arguments, message, scene_file, tmp_path, capsys, monkeypatch):
    scene, path = scene_file
    no_attribution(monkeypatch)
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
    one_error_line(capsys.readouterr().err, message)
    assert not os.path.exists(tmp_path / "f.png")


def test_library_errors_name_the_python_argument(scene_file, monkeypatch):
    scene, path = scene_file
    no_attribution(monkeypatch)
    cases = [
        (dict(image_path="no/such/file.png"), "image_path: no such file"),
        (dict(span="zebra"), "span: 'zebra' is not in the caption"),
        (dict(box=(0, 0, 65, 10)), "box: (0.0, 0.0, 65.0, 10.0) reaches beyond the image"),
        (dict(method="gradcam"), "method: expected one of"),
        (dict(n_steps=0), "n_steps: expected a positive int"),
        (dict(n_steps=10**9, method="icam"), "n_steps: expected at most 4096 nodes per path integral"),
        (dict(layer="top"), "layer: expected 'embeddings' or an int"),
        (dict(fit="stretch"), "fit: expected one of"),
        (dict(caption=" "), "caption: the caption is empty"),
    ]
    for change, message in cases:
        arguments = dict(dict(image_path=path, caption=scene.caption, show_progress=False), **change)
        with pytest.raises(ValueError) as raised:
            explain_module.explain_pair(**arguments)
        assert str(raised.value).startswith(message), (change, str(raised.value))
        assert "--" not in str(raised.value)


@pytest.mark.parametrize("argv", [
    ["explain", "--image", "x.png", "--caption", "a red circle", "--out", "f.png", "--method", "icam"],
    ["explain", "--image", "x.png", "--caption", "a red circle", "--out", "f.png", "--method", "fixlip"],
    ["demo", "--out", "f.png"],
    ["evaluate", "--out", "run"],
])
@pytest.mark.parametrize("n_steps", ["1000000000", "4097"])
def test_more_steps_than_the_library_takes_are_refused_by_the_parser(argv, n_steps, tmp_path, capsys, monkeypatch):
    """The first-order map's Captum LayerIntegratedGradients has no limit of its own: a
    billion nodes there ran out of memory after minutes. The parser refuses what the
    library refuses (``MAX_STEPS``), before any work."""
    from captum_bilinear._utils.quadrature import MAX_STEPS

    monkeypatch.chdir(tmp_path)
    no_model_loading(monkeypatch)
    with pytest.raises(SystemExit) as raised:
        main(argv + ["--n-steps", n_steps])
    assert raised.value.code == 2
    one_error_line(capsys.readouterr().err,
                   f"argument --n-steps: expected at most {MAX_STEPS} nodes per path integral, got {int(n_steps)}")
    assert os.listdir(tmp_path) == []
    assert build_parser().parse_args(argv + ["--n-steps", str(MAX_STEPS)]).n_steps == MAX_STEPS


def test_the_evaluation_refuses_more_steps_than_the_library_takes():
    from captum_bilinear.evaluation.methods import check_steps

    with pytest.raises(ValueError, match="^n_steps: expected at most 4096 nodes per path integral, got 4097"):
        check_steps(4097, None)
    check_steps(4096, None)


def test_only_warnings_that_concern_the_user_are_shown(tmp_path, capsys, monkeypatch):
    """Other libraries' deprecations (torch's ``torch.jit.script`` and ``LeafSpec`` ones
    reached ``explain`` and ``evaluate``) are theirs, not the user's: not shown. The
    package's own warnings, of any kind, and user warnings of any origin are, once each."""
    import warnings

    import torch.jit._script
    import torch.utils._pytree
    import transformers.tokenization_utils_base

    import captum_bilinear.cli as cli
    import captum_bilinear.explain

    def command(args):
        registry = {}  # as warnings.warn keeps one per module
        for _ in range(2):  # the same warnings twice: shown once
            warnings.warn_explicit("`torch.jit.script` is deprecated. Please switch to `torch.compile`",
                                   DeprecationWarning, torch.jit._script.__file__, 1, module="torch.jit._script",
                                   registry=registry)
            warnings.warn_explicit("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning,
                                   torch.utils._pytree.__file__, 2, registry=registry)
            warnings.warn_explicit("a pending change", PendingDeprecationWarning,
                                   transformers.tokenization_utils_base.__file__, 3, registry=registry)
            warnings.warn_explicit("the package's own: n_steps='auto': max_steps=8 reached", UserWarning,
                                   captum_bilinear.explain.__file__, 4, registry=registry)
            warnings.warn_explicit("the package's own deprecation", DeprecationWarning,
                                   captum_bilinear.explain.__file__, 5, registry=registry)
            warnings.warn_explicit("Token indices sequence length is longer than the maximum", UserWarning,
                                   transformers.tokenization_utils_base.__file__, 6, registry=registry)

    monkeypatch.setattr(cli, "_evaluate", command)
    code, _, stderr = run(capsys, "evaluate", "--out", str(tmp_path / "run"))
    assert code == 0
    assert stderr.splitlines() == [
        "captum-bilinear evaluate: warning: the package's own: --n-steps auto: max_steps=8 reached",
        "captum-bilinear evaluate: warning: the package's own deprecation",
        "captum-bilinear evaluate: warning: Token indices sequence length is longer than the maximum",
    ], stderr


def test_a_warning_during_the_attribution_does_not_cut_the_progress_bar(tmp_path, capsys, monkeypatch):
    """A warning printed through an open bar left the bar's half-drawn line above it and
    the bar went on below: two bars stacked on a terminal. The bar is cleared, the warning
    printed on a line of its own, the bar drawn again."""
    import warnings

    import captum_bilinear.cli as cli
    import captum_bilinear.explain
    from captum_bilinear._utils.progress import Progress

    def command(args):
        with Progress(True, "BilinearIntegratedInteractions") as progress:
            progress.expect(4)
            progress.advance(2)
            warnings.warn_explicit("n_steps='auto': max_steps=8 reached", UserWarning,
                                   captum_bilinear.explain.__file__, 4)
            cli._log("a log line")
            progress.advance(2)

    monkeypatch.setattr(cli, "_evaluate", command)
    code, _, stderr = run(capsys, "evaluate", "--out", str(tmp_path / "run"))
    assert code == 0
    lines = stderr.split("\n")
    warning = next(line for line in lines if "warning:" in line)
    assert warning.split("\r")[-1] == "captum-bilinear evaluate: warning: --n-steps auto: max_steps=8 reached", lines
    assert next(line for line in lines if "a log line" in line).split("\r")[-1] == "a log line", lines
    after = lines[lines.index(warning) + 1:]
    assert "2/4" in "".join(after) and "4/4" in "".join(after), lines  # the bar goes on below


# --- issue 11.6: a quick --help, the registry's names -------------------------------------


def test_help_starts_without_the_heavy_modules():
    code = (
        "import sys\n"
        "from captum_bilinear.cli import main\n"
        "for argv in (['--help'], ['explain', '--help'], ['demo', '--help'], ['evaluate', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'captum', 'matplotlib') if m in sys.modules))\n"
    )
    environment = dict(os.environ, PYTHONPATH=REPOSITORY)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                            cwd=REPOSITORY, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout[-300:]
    assert "usage: captum-bilinear explain" in result.stdout


def test_the_fit_choices_are_the_libraries():
    from captum_bilinear.cli import FIT_CHOICES
    from captum_bilinear.images import FITS

    assert FIT_CHOICES == FITS


def test_top_level_help_is_whole_sentences():
    description = build_parser().description
    assert description.endswith(".") and "``" not in description
    assert "explain" in description and "evaluate" in description and "demo" in description


def test_evaluate_help_names_every_dataset_it_takes(capsys):
    """``evaluate`` once ran on demo scenes only, and its help still said so."""
    labels = {"demo": "demo scenes", "coco": "COCO", "flickr30k-entities": "Flickr30k Entities", "hnc": "HNC"}
    parser = build_parser()
    choices = next(a for a in parser._subparsers._group_actions[0].choices["evaluate"]._actions
                   if a.dest == "dataset").choices
    assert set(choices) == set(labels)
    texts = []
    for argv in (["--help"], ["evaluate", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        texts.append(" ".join(capsys.readouterr().out.split()))
    top, evaluate = texts
    summary = next(part for part in top.split(" evaluate ")[1:] if part.startswith("evaluate every method"))
    for label in labels.values():
        assert label in summary, summary
        assert label in evaluate.split("options:")[0], evaluate
        assert label in build_parser().description
    assert not any("every method on held-out" in text for text in texts + [build_parser().description])


def test_explain_takes_every_method_of_the_registry_and_embeddings():
    parser = build_parser()
    for short in METHODS:
        args = parser.parse_args(["explain", "--image", "x.png", "--caption", "c", "--out", "o.png", "--method", short])
        assert methods_of(args) == [short]
    every = parser.parse_args(["explain", "--image", "x.png", "--caption", "c", "--out", "o.html", "--method", "icam",
                               "--method", "all"])
    assert methods_of(every) == ["icam"] + [short for short in METHODS if short != "icam"]
    base = ["explain", "--image", "x.png", "--caption", "c", "--out", "o.png"]
    assert parser.parse_args(base + ["--layer", "embeddings"]).layer == "embeddings"
    assert parser.parse_args(base + ["--layer", "-2"]).layer == -2
    assert parser.parse_args(base).fit == "crop"
    assert parser.parse_args(["demo", "--layer", "embeddings"]).layer == "embeddings"


def test_explain_at_the_embeddings_layers(scene_file):
    scene, path = scene_file
    result = explain_module.explain_pair(path, scene.caption, layer="embeddings", n_steps=2, show_progress=False)
    assert result.layer == "embeddings"
    assert result.interactions is None and result.span_rows.shape == (len(result.spans), 65)  # what is drawn
    result = explain_module.explain_pair(path, scene.caption, layer="embeddings", n_steps=2, show_progress=False,
                                         full=True)
    assert result.interactions.shape == (len(result.tokens), 65)


def test_masking_methods_run_on_the_inputs(scene_file):
    """InteractionLIME and FIxLIP mask the inputs (the embeddings layers), as their papers do,
    whatever layer the gradient methods use."""
    scene, path = scene_file
    result = explain_module.explain_pair(path, "a purple square", method="ilime", layer=3, n_steps=2,
                                         show_progress=False)
    assert result.layer == "embeddings"


# --- issue 21: the page, several methods, saved explanations ----------------------------


@pytest.mark.parametrize("extra, message", [
    (["--method", "bii", "--method", "icam"], "--method: a figure shows one method, got 2 (bii, icam); give one "
                                              "--method, or write the page (--out page.html)"),
    (["--save", "{file}"], "--save: {file} is a file; expected a directory"),
    (["--save", "/no/such/dir/saved"], "--save: the directory /no/such/dir does not exist"),
])
def test_what_a_figure_cannot_show_and_a_bad_save_are_refused_before_any_work(extra, message, scene_file, tmp_path,
                                                                               capsys, monkeypatch):
    _, path = scene_file
    no_model_loading(monkeypatch)
    (tmp_path / "file").write_text("x")
    extra = [item.replace("{file}", str(tmp_path / "file")) for item in extra]
    code, _, stderr = run(capsys, "explain", "--image", path, "--caption", "a red circle", "--out",
                          str(tmp_path / "f.png"), *extra)
    assert code == 2
    one_error_line(stderr, message.replace("{file}", str(tmp_path / "file")))


def test_the_page_and_the_figure_render_one_saved_explanation(scene_file, tmp_path, capsys):
    """``--out page.html --save DIR``: the page holds every method's full matrix as saved;
    the reloaded explanation draws the figure and the same page."""
    import base64
    import json
    import re

    import numpy as np

    from captum_bilinear.explain import Explanation

    scene, path = scene_file
    out, saved = tmp_path / "page.html", tmp_path / "saved"
    code, stdout, _ = run(capsys, "explain", "--image", path, "--caption", scene.caption, "--out", str(out),
                          "--method", "itsm", "--method", "itsm-o", "--n-steps", "2", "--save", str(saved))
    assert code == 0 and f"wrote {out} (ITSM-H, ITSM-O and the first-order map" in stdout
    page = out.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="[^"]+-data">(.*?)</script>', page, re.S).group(1))
    explanation = Explanation.load(saved)
    assert [terms.method for terms in explanation.terms] == [m["name"] for m in data["methods"]] == ["ITSM-H", "ITSM-O"]
    assert data["tokens"] == explanation.tokens and data["grid"] == [8, 8]
    for method, terms in zip(data["methods"], explanation.terms):
        decoded = np.frombuffer(base64.b64decode(method["data"]), dtype="<f4").reshape(terms.cross.shape[1:])
        np.testing.assert_array_equal(decoded, terms.cross[0].float().numpy())
        assert terms.tokens == [explanation.tokens] and terms.grid == (8, 8)
        assert terms.image[0].numpy().tolist() == explanation.image.tolist()
    # the ITSM variants differ: the page names each as the registry does
    assert not np.array_equal(explanation.terms[0].cross.numpy(), explanation.terms[1].cross.numpy())
    assert explanation.interactions.equal(explanation.terms[0].cross[0])
    figure = explanation.figure  # drawn from the reloaded data
    assert figure.axes and explanation.title().startswith("ITSM-H on the bundled demo CLIP")
    assert Explanation.load(saved).page(explorer_id="x").data["methods"] == \
        explanation.page(explorer_id="x").data["methods"]
    # a saved explanation of another format version is refused by name
    metadata = json.loads((saved / "explanation.json").read_text())
    (saved / "explanation.json").write_text(json.dumps({**metadata, "format_version": 2}))
    with pytest.raises(ValueError, match=r"path: .*explanation.json is 'captum-bilinear Explanation' version 2; "
                                         r"this captum-bilinear reads 'captum-bilinear Explanation' version 1 only"):
        Explanation.load(saved)
    with pytest.raises(ValueError, match="path: .* has no explanation.json"):
        Explanation.load(tmp_path)


def test_ctrl_c_ends_a_run_with_one_line_and_status_130(tmp_path):
    """SIGINT in the middle of an evaluation printed a KeyboardInterrupt traceback."""
    import signal
    import time

    out = tmp_path / "run"
    # SIGINT as a terminal delivers it: a test run started in the background (CI's jobs)
    # has SIGINT ignored, which its children would inherit
    process = subprocess.Popen(
        [sys.executable, "-m", "captum_bilinear", "evaluate", "--scenes", "50", "--methods", "bii", "--n-steps", "64",
         "--completeness-examples", "0", "--no-progress", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPOSITORY,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not (out / "records").is_dir() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # the run has started its pairs once its records folder exists
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # never leave a 50-scene run behind
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == (
        "captum-bilinear evaluate: interrupted (rerun it with --resume to continue where it stopped)")


def test_a_span_in_the_cut_part_of_a_long_caption_is_refused_before_any_attribution(scene_file, tmp_path, capsys,
                                                                                    monkeypatch):
    """It was refused by the figure ("(87, 89) lies outside the 32 positions"), after the
    whole attribution."""
    no_attribution(monkeypatch)
    _, path = scene_file
    caption = " ".join(["a red circle above a blue square"] * 12) + " and a green star"
    code, _, stderr = run(capsys, "explain", "--image", path, "--caption", caption, "--span", "green star",
                          "--out", str(tmp_path / "f.png"))
    assert code == 2
    one_error_line(stderr, "--span: 'green star' lies in the part of the caption the model does not read (it reads "
                           "32 tokens")


def test_itsm_o_says_it_reads_the_last_hidden_states(scene_file):
    """ITSM-O compares the encoders' last hidden states; the figure's title named the
    layer it was given ("encoder layer 3")."""
    scene, path = scene_file
    result = explain_module.explain_pair(path, scene.caption, method="itsm-o", layer=3, n_steps=2,
                                         show_progress=False)
    title = result.figure._suptitle.get_text()
    assert title.startswith("ITSM-O on the bundled demo CLIP, the encoders' last hidden states:"), title
    assert "layer 3" not in title


def test_explain_with_the_siglip2_demo_model(scene_file, tmp_path, capsys):
    """The bundled SigLIP-2 by name: its NaFlex patches (8 x 8, no CLS), the box mapped
    onto them, the span's map equal to BII called on its processor's patches."""
    import torch

    from captum_bilinear import BilinearIntegratedInteractions
    from captum_bilinear.explain import explain_pair
    from captum_bilinear.loading import layer_pair, load_model
    from captum_bilinear.selection import span_image_map
    from captum_bilinear.zoo.siglip2 import siglip2_available

    if not siglip2_available():
        pytest.skip("transformers < 4.49 has no Siglip2Model: the SigLIP-2 demo model is skipped")
    scene, path = scene_file
    words = " ".join(scene.objects[0].words)
    x0, y0, x1, y1 = scene.objects[0].box
    out = tmp_path / "siglip2.png"
    code, stdout, _ = run(capsys, "explain", "--model", "demo-siglip2", "--image", path, "--caption", scene.caption,
                          "--out", str(out), "--span", words, "--box", f"{x0},{y0},{x1},{y1}", "--n-steps", "2")
    assert code == 0 and f'"{words}"' in stdout and out.stat().st_size > 0
    result = explain_pair(path, scene.caption, span=words, model="demo-siglip2", n_steps=2, show_progress=False)
    assert result.span_rows.shape == (1, 64)  # the figure's span as one group of tokens
    loaded = load_model("demo-siglip2")
    images = loaded.image_processor(images=Image.open(path), return_tensors="pt")
    text = loaded.tokenizer(scene.caption, return_tensors="pt")
    A = BilinearIntegratedInteractions(loaded.model, layer_pair(loaded.model, loaded.default_layer)).attribute(
        (text["input_ids"], images["pixel_values"]), n_steps=2,
        additional_forward_args=((text["attention_mask"],), (images["pixel_attention_mask"], images["spatial_shapes"])))
    expected = span_image_map(A[0], scene.objects[0].span, (8, 8), has_cls=False)
    assert torch.allclose(span_image_map(result.span_rows, (0, 1), (8, 8), has_cls=False), expected, atol=1e-6)
    full = explain_pair(path, scene.caption, span=words, model="demo-siglip2", n_steps=2, show_progress=False,
                        full=True)
    assert full.interactions.shape == (len(scene.words) + 2, 64)


def test_demo_with_a_negative_seed_names_the_flag(capsys):
    """``demo --seed -1`` said only "error: expected non-negative integer" (numpy's words)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--seed", "-1", "--out", "demo.png"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "captum-bilinear demo: error: argument --seed: expected a non-negative integer (a held-out scene), got -1"]


@pytest.mark.parametrize("arguments, message", [
    (["--span", ""], "--span: expected a non-empty string, got ''"),
    (["--span", "  "], "--span: expected a non-empty string, got '  '"),
    (["--box", "nan,0,10,10"], "--box: expected a finite number, got nan"),
    (["--box", "10,10,0,0"], "--box: (10.0, 10.0, 0.0, 0.0) is empty; expected x0 < x1 and y0 < y1"),
])
def test_an_empty_span_or_box_is_refused_before_the_model_is_loaded(arguments, message, scene_file, tmp_path, capsys,
                                                                     monkeypatch):
    """These were refused only after the model was loaded and the image fitted."""
    scene, path = scene_file
    no_model_loading(monkeypatch)
    code, _, err = run(capsys, "explain", "--image", path, "--caption", scene.caption, "--out",
                       str(tmp_path / "f.png"), *arguments)
    assert code == 2 and err.strip().splitlines() == [f"captum-bilinear explain: error: {message}"]


def test_an_out_that_is_the_image_is_refused_before_it_is_overwritten(scene_file, tmp_path, capsys, monkeypatch):
    """``--out`` naming the ``--image`` file (or a link to it) replaced the user's image
    with the figure."""
    scene, path = scene_file
    image = tmp_path / "photo.png"
    image.write_bytes(open(path, "rb").read())
    (tmp_path / "link.png").symlink_to(image)
    before = image.read_bytes()
    no_model_loading(monkeypatch)
    for out in (image, tmp_path / "link.png", tmp_path / "." / "photo.png"):
        code, _, err = run(capsys, "explain", "--image", str(image), "--caption", scene.caption, "--out", str(out))
        assert code == 2 and err.strip().splitlines() == [
            f"captum-bilinear explain: error: --out: {out} is the --image file; writing the figure there would "
            "replace the image"]
    assert image.read_bytes() == before


def test_a_checkpoint_of_another_family_is_refused_by_the_command_line_in_one_line(scene_file, tmp_path, capsys):
    """A Chinese-CLIP checkpoint (a BERT text tower: ``encoder.layer``) passed the dual
    encoder check; with its tokenizer it then failed with an AttributeError traceback in
    the layer check (here, without one, it was refused for a missing tokenizer): it is
    named as a family the command line does not take, before anything else is loaded."""
    import transformers

    _, path = scene_file
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = transformers.ChineseCLIPConfig(text_config=dict(small, vocab_size=99, pad_token_id=0),
                                            vision_config=dict(small, image_size=32, patch_size=8), projection_dim=16)
    transformers.ChineseCLIPModel(config).save_pretrained(tmp_path / "chinese-clip")
    code, _, stderr = run(capsys, "explain", "--image", path, "--caption", "a red circle", "--out",
                          str(tmp_path / "f.png"), "--model", str(tmp_path / "chinese-clip"))
    assert code == 2
    one_error_line(stderr, f"--model: {str(tmp_path / 'chinese-clip')!r} is a ChineseCLIPModel: the command line "
                           "explains CLIP, SigLIP and SigLIP-2 checkpoints")
