"""The ``captum-bilinear`` command: ``explain`` one image-caption pair, ``demo`` on a
generated scene, ``evaluate`` every method on a dataset (COCO, Flickr30k Entities, HNC, or
held-out scenes of the demo world: ``--dataset``).

The library (:mod:`captum_bilinear.explain`) names its Python arguments in its errors and
warnings (``image_path: no such file``); this module prints them with the command line's
flags (``--image: no such file``). Bad input exits with status 2 and one line naming the
problem (``--debug`` shows the traceback instead), and is found before any attribution
runs. Heavy modules (torch, transformers, Captum, matplotlib) are imported only by the
commands that need them, so ``--help`` starts at once.
"""

import argparse
import os
import re
import sys
import tempfile
import warnings
from typing import Any, Optional, Sequence, Tuple

from captum_bilinear._utils.cli_types import layer_choice, positive_float, positive_int, step_count
from captum_bilinear._utils.step_limit import MAX_STEPS
from captum_bilinear.registry import METHODS

DESCRIPTION = ("Second-order (token-patch) attributions for dual encoders: explain one image-caption pair, "
               "explain a generated scene with the bundled demo model, or evaluate every method on a dataset "
               "(COCO, Flickr30k Entities, HNC or held-out demo scenes).")

#: The library's argument names and the flags that set them.
#: ``explain`` / ``demo``'s default tolerance: the relative error of the drawn maps (and of
#: completeness); a figure's colours cannot show 1 % of their scale (docs: Performance).
FIGURE_TOLERANCE = 1e-2

FLAGS = {
    "image_path": "--image", "caption": "--caption", "span": "--span", "box": "--box", "method": "--method",
    "model": "--model", "n_steps": "--n-steps", "tolerance": "--tolerance", "layer": "--layer", "fit": "--fit", "out": "--out",
    "save": "--save",
    # evaluate's
    "dataset": "--dataset", "images": "--images", "captions": "--captions", "instances": "--instances",
    "synonyms": "--synonyms", "root": "--root", "split": "--split", "annotations": "--annotations",
    "limit": "--limit", "resume": "--resume", "methods": "--methods", "seed": "--seed", "scenes": "--scenes",
    "per_layer_scenes": "--per-layer-scenes", "completeness_examples": "--completeness-examples",
}
#: ``--out`` file extensions that write the interactive page instead of a figure.
PAGE_EXTENSIONS = ("html", "htm")
#: ``--method all``: every method of the registry.
ALL_METHODS = "all"
#: How an image is fitted to the model's input (:data:`captum_bilinear.images.FITS`).
FIT_CHOICES = ("crop", "pad")
_ARGUMENT_PREFIX = re.compile(r"^(\w+): ")
_ARGUMENT_VALUE = re.compile(r"\b(" + "|".join(FLAGS) + r")=(?:'([^']*)'|\"([^\"]*)\"|([^\s,;)]+))")


def with_flags(message: str) -> str:
    """A library message with the command line's flags for the Python arguments it names.

    Example:
        >>> with_flags("image_path: no such file: x.png; fit='pad' keeps the whole image")
        '--image: no such file: x.png; --fit pad keeps the whole image'
    """
    prefix = _ARGUMENT_PREFIX.match(message)
    if prefix and prefix.group(1) in FLAGS:
        message = FLAGS[prefix.group(1)] + message[len(prefix.group(1)):]
    return _ARGUMENT_VALUE.sub(lambda m: f"{FLAGS[m.group(1)]} {next(g for g in m.groups()[1:] if g is not None)}",
                               message)


def _box(text: str) -> Tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1 (four numbers), got {text!r}") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1 (four numbers), got {text!r}")
    return values


def _scene_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer (a held-out scene), got {text!r}") from None
    if value < 0:  # numpy's seeding refuses it, in words that name no flag
        raise argparse.ArgumentTypeError(f"expected a non-negative integer (a held-out scene), got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of this command."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _method_options(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(f"{spec.short} ({spec.name})" for spec in METHODS.values())
    parser.add_argument("--method", action="append", choices=[*METHODS, ALL_METHODS], metavar="METHOD",
                        help=f"interaction method: {names}, or {ALL_METHODS} (default bii). Give it several times "
                             "to compare methods on the page (--out page.html); a figure shows one (with --save: "
                             "the first, the others kept)")
    parser.add_argument("--n-steps", type=step_count, default="auto",
                        help=f"BII's quadrature nodes (at most {MAX_STEPS}; also the first-order map's), or 'auto' (the default): "
                             "as many as --tolerance needs, per pair")
    parser.add_argument("--tolerance", type=positive_float, default=FIGURE_TOLERANCE,
                        help=f"relative error of --n-steps auto: of the drawn maps (estimated) and of completeness "
                             f"(default {FIGURE_TOLERANCE:g}: a figure's colours cannot show 1 %% of their scale)")
    parser.add_argument("--layer", type=layer_choice, metavar="embeddings|INDEX",
                        help="layer pair the gradient methods attribute: 'embeddings' or an encoder layer index "
                             "(default: the model's default); the masking methods (ilime, fixlip) mask the inputs")


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (no heavy module is imported).

    Example:
        >>> build_parser().parse_args(["explain", "--image", "a.png", "--caption", "a red circle",
        ...                            "--out", "f.png", "--layer", "embeddings"]).layer
        'embeddings'
    """
    parser = _Parser(prog="captum-bilinear", description=DESCRIPTION)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    explain = commands.add_parser("explain", help="explain one image-caption pair and save the figure",
                                  description="Explain one image-caption pair and save the figure.")
    explain.add_argument("--image", required=True, help="image file")
    explain.add_argument("--caption", required=True, help="the caption")
    explain.add_argument("--out", required=True,
                         help="figure to write (.png, .pdf, .svg, ...), or the interactive page (.html): every "
                              "token's map over the image, one self-contained file that needs no network")
    explain.add_argument("--save", metavar="DIR",
                         help="also keep what was computed in DIR (every method's terms, the first-order map, the "
                              "image; Explanation.load reads it back)")
    explain.add_argument("--span", help="caption substring to map onto the image (default: every noun phrase)")
    explain.add_argument("--box", type=_box, help="X0,Y0,X1,Y1 in the image's pixels, mapped onto the caption")
    explain.add_argument("--fit", choices=FIT_CHOICES, default="crop",
                         help="an image that is not square: 'crop' as the model's processor does (default; "
                              "what lies outside the centre is lost) or 'pad' to a square first (nothing is lost)")
    explain.add_argument("--model", help="HF CLIP / SigLIP directory or hub id (default: the bundled demo model)")
    _method_options(explain)

    demo = commands.add_parser("demo", help="explain a generated scene with the bundled model",
                               description="Explain a held-out generated scene with the bundled demo model.")
    demo.add_argument("--out", default="demo.png", help="figure to write (default demo.png; the scene is saved beside it)")
    demo.add_argument("--seed", type=_scene_index, default=3, help="which held-out scene (default 3)")
    _method_options(demo)

    from captum_bilinear.evaluation import command as evaluate_command

    evaluate = commands.add_parser(
        "evaluate", help="evaluate every method on COCO, Flickr30k Entities, HNC or held-out demo scenes (--dataset)",
        description="Evaluate every method on a dataset (--dataset): COCO, Flickr30k Entities, HNC, or held-out "
                    "demo scenes (the default; generated by the bundled demo world).")
    evaluate_command.add_arguments(evaluate, positive_int)
    return parser


def _image_formats() -> Sequence[str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def checked_out(path: str) -> str:
    """``path`` if a figure can be written there, else ``ValueError`` naming ``out``: an
    existing directory, no or an unknown file extension, a missing or unwritable directory.

    Example:
        >>> checked_out("/no/such/dir/figure.png")
        Traceback (most recent call last):
        ...
        ValueError: out: the directory /no/such/dir does not exist
    """
    formats = [*_image_formats(), *PAGE_EXTENSIONS]
    expected = ", ".join(f".{name}" for name in formats)
    if os.path.isdir(path):
        raise ValueError(f"out: {path} is a directory; expected a file name ending in one of {expected}")
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if not extension:
        raise ValueError(f"out: {path} has no file extension; expected a file name ending in one of {expected}")
    if extension not in formats:
        raise ValueError(f"out: cannot write a .{extension} file; expected one of {expected}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"out: the directory {directory} does not exist")
    try:  # the only check of writability that holds for every user, root included
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".captum-bilinear-"):
            pass
    except OSError as error:
        raise ValueError(f"out: cannot write in {directory} ({error.strerror or type(error).__name__})") from error
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ValueError(f"out: cannot overwrite {path} (not writable)")
    return path


#: Warnings of these kinds are shown only when raised in this package: those of torch,
#: transformers, ... (``torch.jit.script`` is deprecated, ...) are about their own code,
#: not about the user's input. Other warnings (UserWarning, ...) are shown from anywhere.
INTERNAL_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
_PACKAGE_DIRECTORY = os.path.dirname(os.path.abspath(__file__))


def concerns_the_user(category: type, filename: str) -> bool:
    """Whether a warning of ``category`` raised at ``filename`` is shown on the command line.

    Example:
        >>> concerns_the_user(DeprecationWarning, "/site-packages/torch/jit/_script.py")
        False
        >>> concerns_the_user(UserWarning, "/site-packages/transformers/tokenization_utils_base.py")
        True
    """
    if not issubclass(category, INTERNAL_WARNINGS):
        return True
    return os.path.abspath(filename).startswith(_PACKAGE_DIRECTORY + os.sep)


def _to_stderr(line: str) -> None:
    """One line on stderr; an open progress bar is cleared first and drawn again after
    (the line does not cut the bar in two)."""
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is None:
        print(line, file=sys.stderr)
        return
    with tqdm_module.tqdm.external_write_mode(file=sys.stderr):
        print(line, file=sys.stderr)


def _log(message: str) -> None:
    _to_stderr(with_flags(message))


def methods_of(args: argparse.Namespace) -> list:
    """The ``--method`` values as short names, in order, each once (default ``bii``).

    Example:
        >>> methods_of(argparse.Namespace(method=["icam", "bii", "icam"])), methods_of(argparse.Namespace(method=None))
        (['icam', 'bii'], ['bii'])
    """
    names = []
    for name in args.method or ["bii"]:
        for short in (METHODS if name == ALL_METHODS else [name]):
            if short not in names:
                names.append(short)
    return names


def is_page(path: str) -> bool:
    """Whether ``--out`` names the interactive page (``.html``) rather than a figure."""
    return os.path.splitext(path)[1].lower().lstrip(".") in PAGE_EXTENSIONS


def _checked_save(path: str) -> str:
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"save: {path} is a file; expected a directory (created if missing)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"save: the directory {parent} does not exist")
    return path


def _explain(args: argparse.Namespace) -> None:
    out = checked_out(args.out)
    if os.path.exists(out) and os.path.exists(args.image) and os.path.samefile(out, args.image):
        raise ValueError(f"out: {out} is the --image file; writing the figure there would replace the image")
    methods = methods_of(args)
    save = getattr(args, "save", None)
    if save is not None:
        _checked_save(save)
    page = is_page(out)
    if len(methods) > 1 and not page and save is None:
        raise ValueError(f"method: a figure shows one method, got {len(methods)} ({', '.join(methods)}); give one "
                         "--method, or write the page (--out page.html) to compare them")
    import matplotlib

    matplotlib.use("Agg")
    from captum_bilinear.explain import explain_pair

    result = explain_pair(
        args.image, args.caption, span=args.span, box=args.box, method=methods, model=args.model,
        n_steps=args.n_steps, tolerance=args.tolerance, layer=args.layer, fit=args.fit, log=_log,
        full=page or save is not None,  # a figure needs its spans and box only; the page and --save every pair
    )
    if save is not None:
        result.save(save)
        print(f"saved the explanation in {save}")
    if page:
        result.page().save(out)
        size = os.path.getsize(out)
        print(f"wrote {out} ({', '.join(spec.name for spec in result.methods)} and the first-order map; "
              f"{size / 1e6:.2f} MB, opens offline in a browser)")
        return
    result.figure.savefig(out, dpi=150, bbox_inches="tight")
    spans = ", ".join(f'"{label}"' for label in result.labels)
    print(f"wrote {out} ({spans})")


def _demo(args: argparse.Namespace) -> None:
    """A held-out scene of the demo world: its image is saved beside the figure, every
    object's words become a panel, and the first object's box is mapped onto the caption."""
    checked_out(args.out)
    from captum_bilinear.zoo import HELD_OUT_SEED, SceneGenerator

    scene = SceneGenerator(HELD_OUT_SEED, mode="full").scene(args.seed)
    stem, _ = os.path.splitext(args.out)
    image_path = f"{stem}_scene.png"
    scene.pil().save(image_path)
    print(f"scene: {image_path}\ncaption: {scene.caption}", file=sys.stderr)
    _explain(argparse.Namespace(image=image_path, caption=scene.caption, out=args.out, span=None,
                                box=tuple(float(v) for v in scene.objects[0].box), method=args.method, model=None,
                                n_steps=args.n_steps, tolerance=args.tolerance, layer=args.layer,
                                fit="crop"))


def _evaluate(args: argparse.Namespace) -> None:
    from captum_bilinear.evaluation import command as evaluate_command

    evaluate_command.run(args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line on ``argv`` (default ``sys.argv[1:]``); the exit status.

    Example:
        >>> main(["explain", "--image", "no/such.png", "--caption", "a red circle", "--out", "f.png"])
        2
    """
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)

    def show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if concerns_the_user(category, filename):
            _to_stderr(f"captum-bilinear {args.command}: warning: {with_flags(str(message))}")

    with warnings.catch_warnings():
        # each warning once per call of main, on stderr as one line; other libraries'
        # deprecations are not shown (:func:`concerns_the_user`)
        warnings.simplefilter("default")
        warnings.showwarning = show_warning
        try:
            {"explain": _explain, "demo": _demo, "evaluate": _evaluate}[args.command](args)
        except KeyboardInterrupt:
            if args.debug:
                raise
            resume = " (rerun it with --resume to continue where it stopped)" if args.command == "evaluate" else ""
            print(f"captum-bilinear {args.command}: interrupted{resume}", file=sys.stderr)
            return 130  # the shell's status for SIGINT
        except (ValueError, TypeError, OSError) as error:
            if args.debug:
                raise
            text = str(error).strip()
            message = with_flags(text.splitlines()[0]) if text else type(error).__name__
            print(f"captum-bilinear {args.command}: error: {message}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
