"""``captum-bilinear evaluate``: its arguments and what it runs (kept apart from
:mod:`captum_bilinear.cli`, and importing nothing heavy, so the command line's help
starts without loading the methods)."""

import argparse
from typing import Any, Callable, Optional

from captum_bilinear._utils.cli_types import layer_choice, positive_float, step_count
from captum_bilinear._utils.step_limit import MAX_STEPS

DATASETS = ("demo", "coco", "flickr30k-entities", "hnc")

#: Examples whose p-faithfulness every method gets (the first ones): it needs every pair's
#: interaction, BII's whole matrix, where the other metrics need one row per object span
#: and one column per box (docs: Evaluation; None: every example).
FAITHFULNESS_EXAMPLES = 40

#: ``--tolerance`` of BII's ``n_steps="auto"`` in an evaluation: a relative error of the
#: maps it scores. On 11 held-out scenes (26 objects) 1e-4 gave the same pointing game on
#: every object and PGE within 2e-4 of 1e-2's, at 2.7x the time (issue 18's measurement;
#: docs, Performance, has the quadrature's map errors at each tolerance).
EVALUATION_TOLERANCE = 1e-2


def add_arguments(parser: argparse.ArgumentParser, positive: Callable[[str], int]) -> None:
    """The ``evaluate`` subcommand's options (``positive`` parses a positive int)."""
    data = parser.add_argument_group("dataset")
    data.add_argument("--dataset", choices=DATASETS, default="demo",
                      help="which dataset (default: the bundled demo world)")
    data.add_argument("--scenes", type=positive, default=300, help="demo: number of held-out scenes (default 300)")
    data.add_argument("--seed", type=int, default=0,
                      help="demo scene stream; every dataset: the sampling methods' and coalitions' seed (default 0)")
    data.add_argument("--images", help="coco / flickr30k-entities / hnc: the images folder")
    data.add_argument("--captions", help="coco: captions_*.json")
    data.add_argument("--instances", help="coco: instances_*.json")
    data.add_argument("--synonyms", help="coco: a JSON file category -> words (default: the shipped one)")
    data.add_argument("--root", help="flickr30k-entities: the folder with Sentences/, Annotations/, the split files")
    data.add_argument("--split", default="test", choices=("train", "val", "test"),
                      help="flickr30k-entities: the split (default test)")
    data.add_argument("--annotations", help="hnc: the HNC JSON file")
    data.add_argument("--limit", type=positive, help="only the first N image-caption pairs")
    run = parser.add_argument_group("run")
    run.add_argument("--out", required=True, help="output directory (records/, results.json, report.md, plots)")
    run.add_argument("--model", action="append",
                     help="HF CLIP / SigLIP / SigLIP-2 directory or hub id, or a bundled demo model: demo-clip (the "
                          "default) or demo-siglip2. Given twice or more (--model A --model B): the same pairs "
                          "through each model, each run in --out/<model>/, and --out/comparison.md (+ .json, "
                          "figures/) with a row per (model, method)")
    run.add_argument("--layer", type=layer_choice,
                     help="'embeddings' or an encoder layer index for BII, ICAM, ITSM-H and LayerIntegratedGradients "
                          "(default: the model's default)")
    run.add_argument("--methods", nargs="+",
                     help="methods to run: bii icam ilime itsm itsm-o fixlip lig gradcam, or the full names "
                          "(default: all)")
    run.add_argument("--n-steps", type=step_count, default="auto",
                     help=f"BII's quadrature nodes (at most {MAX_STEPS}), or 'auto' (to --tolerance; the default); "
                          "LayerIntegratedGradients uses the int, or 64 with 'auto'")
    run.add_argument("--tolerance", type=positive_float, default=EVALUATION_TOLERANCE,
                     help="relative error of BII's maps with --n-steps auto (default "
                          f"{EVALUATION_TOLERANCE:g}: on 11 held-out scenes it scored the pointing game as 1e-4 did "
                          "on every object, PGE within 2e-4, at 0.37x the time; docs: Performance)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out, skipping complete pairs")
    run.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: this rank's GPU if there is one, else cpu)")
    run.add_argument("--per-layer-scenes", type=int, default=0, metavar="N",
                     help="also run the gradient methods at the embeddings and every encoder layer on the first N "
                          "pairs, for the per-layer table (default 0: no)")
    run.add_argument("--completeness-examples", type=int, default=10, metavar="N",
                     help="pairs of BII's completeness-error-vs-n_steps plot (default 10; 0: none)")
    run.add_argument("--figure-pairs", type=int, default=4, metavar="N",
                     help="with two or more --model: pairs drawn under every model (default 4; 0: none)")
    run.add_argument("--faithfulness-examples", type=faithfulness_count, default=FAITHFULNESS_EXAMPLES, metavar="N",
                     help=f"the first N pairs get every method's p-faithfulness, which needs BII's whole matrix "
                          f"(default {FAITHFULNESS_EXAMPLES}; 'all': every pair); on the others BII computes the "
                          "object spans and boxes the other metrics read")
    run.add_argument("--keep-terms", action="store_true",
                     help="keep every pair's terms under OUT/terms/ (InteractionTerms.load reads them) and write each "
                          "pair's interactive explorer under OUT/pages/, opened from report.html")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: Any) -> Optional[dict]:
    """Runs the evaluation the parsed ``args`` describe (one ``--model``: one run, as
    ever; two or more: :func:`~captum_bilinear.evaluation.compare.run_comparison`)."""
    import os

    from captum_bilinear.evaluation.run import run_evaluation

    models = args.model if isinstance(args.model, list) else [args.model]
    options = dict(
        n_scenes=args.scenes, seed=args.seed, out=args.out, methods=args.methods, n_steps=args.n_steps,
        layer=args.layer, completeness_scenes=args.completeness_examples, show_progress=not args.no_progress,
        dataset=args.dataset, resume=args.resume, device=args.device, images=args.images, captions=args.captions,
        instances=args.instances, synonyms=args.synonyms, root=args.root, split=args.split,
        annotations=args.annotations, limit=args.limit, tolerance=args.tolerance,
        per_layer_scenes=args.per_layer_scenes, keep_terms=getattr(args, "keep_terms", False),
        faithfulness_examples=getattr(args, "faithfulness_examples", FAITHFULNESS_EXAMPLES),
    )
    if len(models) > 1:
        from captum_bilinear.evaluation.compare import run_comparison

        results = run_comparison(models, figure_pairs=getattr(args, "figure_pairs", 4), **options)
        if results:  # rank 0
            print(f"compared {len(models)} models; the comparison: {os.path.join(args.out, 'comparison.md')}")
        return results
    results = run_evaluation(model=models[0], **options)
    if results:  # rank 0
        report = os.path.join(args.out, "report.md")
        seconds = results.get("settings", {}).get("seconds")
        took = f" in {seconds / 60:.1f} min" if isinstance(seconds, (int, float)) else ""
        print(f"evaluated {results['dataset'].get('examples')} pairs{took}; the report: {report} "
              f"(and {os.path.join(args.out, 'report.html')}), the numbers: {os.path.join(args.out, 'results.json')}")
    return results


def faithfulness_count(value: str) -> Optional[int]:
    """``--faithfulness-examples``: a non-negative int, or ``all`` (None).

    Example:
        >>> faithfulness_count("all"), faithfulness_count("12")
        (None, 12)
    """
    if value == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative int or 'all', got {value!r}")
    return count
