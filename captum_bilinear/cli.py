"""The ``captum-bilinear`` command: ``explain`` one image-caption pair, ``evaluate`` every
method on the bundled demo world.

Bad input exits with status 2 and one line naming the problem (``--debug`` shows the
traceback instead).
"""

import argparse
import os
import sys
from typing import Optional, Sequence, Tuple

from captum_bilinear.explain import METHODS, ExplainError


def _box(text: str) -> Tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1 (four numbers), got {text!r}") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1 (four numbers), got {text!r}")
    return values  # type: ignore[return-value]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of this command."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="captum-bilinear", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    explain = commands.add_parser("explain", help="explain one image-caption pair and save the figure")
    explain.add_argument("--image", required=True, help="image file")
    explain.add_argument("--caption", required=True, help="the caption")
    explain.add_argument("--out", required=True, help="figure to write (.png, .pdf, .svg)")
    explain.add_argument("--span", help="caption substring to map onto the image (default: every noun phrase)")
    explain.add_argument("--box", type=_box, help="X0,Y0,X1,Y1 in the image's pixels, mapped onto the caption")
    explain.add_argument("--method", default="bii", choices=sorted(METHODS), help="interaction method (default bii)")
    explain.add_argument("--model", help="HF CLIP / SigLIP directory or hub id (default: the bundled demo model)")
    explain.add_argument("--n-steps", type=_positive, default=32, help="quadrature nodes (default 32)")
    explain.add_argument("--layer", type=int, help="encoder layer index (default: the model's default)")

    demo = commands.add_parser("demo", help="explain a generated scene with the bundled model")
    demo.add_argument("--out", default="demo.png", help="figure to write (default demo.png; the scene is saved beside it)")
    demo.add_argument("--seed", type=int, default=3, help="which held-out scene (default 3)")
    demo.add_argument("--method", default="bii", choices=sorted(METHODS), help="interaction method (default bii)")
    demo.add_argument("--n-steps", type=_positive, default=32, help="quadrature nodes (default 32)")

    from captum_bilinear.evaluation import command as evaluate_command

    evaluate = commands.add_parser("evaluate", help="evaluate every method on held-out demo scenes")
    evaluate_command.add_arguments(evaluate, _positive)
    return parser


def _explain(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from captum_bilinear.explain import explain_pair

    directory = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(directory):
        raise ExplainError(f"--out: the directory {directory} does not exist")
    result = explain_pair(
        args.image, args.caption, span=args.span, box=args.box, method=args.method, model=args.model,
        n_steps=args.n_steps, layer=args.layer, log=lambda message: print(message, file=sys.stderr),
    )
    try:
        result.figure.savefig(args.out, dpi=150, bbox_inches="tight")
    except (OSError, ValueError) as error:
        raise ExplainError(f"--out: cannot write {args.out}: {error}") from error
    spans = ", ".join(f'"{" ".join(result.tokens[a:b])}"' for a, b in result.spans)
    print(f"wrote {args.out} ({spans})")


def _demo(args: argparse.Namespace) -> None:
    """A held-out scene of the demo world: its image is saved beside the figure, every
    object's words become a panel, and the first object's box is mapped onto the caption."""
    from captum_bilinear.zoo import HELD_OUT_SEED, SceneGenerator

    scene = SceneGenerator(HELD_OUT_SEED, mode="full").scene(args.seed)
    stem, _ = os.path.splitext(args.out)
    image_path = f"{stem}_scene.png"
    directory = os.path.dirname(os.path.abspath(image_path))
    if not os.path.isdir(directory):
        raise ExplainError(f"--out: the directory {directory} does not exist")
    scene.pil().save(image_path)
    print(f"scene: {image_path}\ncaption: {scene.caption}", file=sys.stderr)
    box = ",".join(str(v) for v in scene.objects[0].box)
    _explain(argparse.Namespace(image=image_path, caption=scene.caption, out=args.out, span=None,
                                box=_box(box), method=args.method, model=None, n_steps=args.n_steps, layer=None))


def _evaluate(args: argparse.Namespace) -> None:
    from captum_bilinear.evaluation import command as evaluate_command

    evaluate_command.run(args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        {"explain": _explain, "demo": _demo, "evaluate": _evaluate}[args.command](args)
    except (ExplainError, ValueError, TypeError, OSError) as error:
        if args.debug:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"captum-bilinear {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
