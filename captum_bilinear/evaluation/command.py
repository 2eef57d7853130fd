"""``captum-bilinear evaluate``: its arguments and what it runs (kept apart from
:mod:`captum_bilinear.cli` so the command line's help starts without loading the methods)."""

import argparse
from typing import Any, Callable


def add_arguments(parser: argparse.ArgumentParser, positive: Callable[[str], int]) -> None:
    """The ``evaluate`` subcommand's options (``positive`` parses a positive int)."""
    parser.add_argument("--scenes", type=positive, default=300, help="number of held-out scenes (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    parser.add_argument("--out", required=True, help="output directory (results.json, report.md, plots)")
    parser.add_argument("--methods", nargs="+", help="method names to run (default: all)")
    parser.add_argument("--n-steps", type=positive, default=32, help="quadrature nodes of the integrated methods")


def run(args: Any) -> None:
    """Runs the evaluation the parsed ``args`` describe."""
    from captum_bilinear.evaluation import run_evaluation

    run_evaluation(n_scenes=args.scenes, seed=args.seed, out=args.out, methods=args.methods, n_steps=args.n_steps)
