"""What a pair costs: ``explain`` and ``evaluate``, BII against FIxLIP, full matrix against groups.

One run, side by side, on held-out scenes of the demo world (a seed used for nothing
else), the demo model at its default layer (the embeddings):

1. **explain** -- ``captum-bilinear explain`` as a user runs it (a fresh process per call:
   start-up, model loading, attribution, first-order map, figure), ``--method bii`` and
   ``--method fixlip`` interleaved per scene, plus ``--out page.html`` (BII's whole matrix);
   wall seconds, and the median over scenes of the per-scene ratio BII / FIxLIP.
2. **groups** -- in one process: BII of three caption spans as groups against the whole
   matrix, at the same nodes (``n_steps=--n-steps``: the grouped matrix must equal the
   whole one summed over the groups) and with ``n_steps="auto"`` at the figure's
   tolerance; FIxLIP's ``attribute`` on the same pair; seconds (process CPU time on one
   thread, so that the machine's other load counts less) and the relative map error of
   ``auto`` against uniform Gauss-Legendre with ``--reference`` nodes.
3. **evaluate** -- ``captum-bilinear evaluate --methods bii fixlip`` on ``--evaluate-scenes``
   scenes in a fresh process: each method's ``seconds_per_pair`` from ``results.json`` (a
   pair's hard negatives included), their ratio, and the command's wall time against the
   seconds the two methods spent attributing.

Usage::

    python benchmarks/pairs.py --scenes 6 --evaluate-scenes 8 --json pairs.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

SEED = 20261208  # held-out scenes used by this benchmark only


def _scenes(count: int, seed: int) -> List[Any]:
    from captum_bilinear.zoo import SceneGenerator

    return SceneGenerator(seed, mode="full").scenes(count)


def _command(*arguments: str) -> float:
    """Wall seconds of ``captum-bilinear ARGUMENTS`` in a fresh process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "captum_bilinear", *arguments], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=dict(os.environ, TQDM_DISABLE="1"))
    return time.perf_counter() - start


def explain_section(scenes: List[Any], directory: str) -> Dict[str, Any]:
    rows = []
    for index, scene in enumerate(scenes):
        image = os.path.join(directory, f"scene{index}.png")
        scene.pil().save(image)
        box = ",".join(str(int(v)) for v in scene.objects[0].box)
        common = ["explain", "--image", image, "--caption", scene.caption, "--box", box]
        row = {"scene": index, "tokens": len(scene.caption.split())}
        for method in ("bii", "fixlip"):
            row[method] = _command(*common, "--method", method, "--out", os.path.join(directory, f"{method}{index}.png"))
        row["bii page"] = _command(*common, "--method", "bii", "--out", os.path.join(directory, f"page{index}.html"))
        rows.append(row)
        print(f"explain scene {index}: {row}", file=sys.stderr, flush=True)
    return {"rows": rows, "median_bii": statistics.median(r["bii"] for r in rows),
            "median_fixlip": statistics.median(r["fixlip"] for r in rows),
            "median_page": statistics.median(r["bii page"] for r in rows),
            "ratio_bii_fixlip": statistics.median(r["bii"] / r["fixlip"] for r in rows)}


def groups_section(scenes: List[Any], n_steps: int, tolerance: float, reference: int) -> Dict[str, Any]:
    import torch

    from captum_bilinear import BilinearIntegratedInteractions, WeightedBanzhafInteractions
    from captum_bilinear.selection import span_mask
    from captum_bilinear.zoo import load_demo_model, scene_inputs

    torch.set_num_threads(1)
    model, tokenizer, processor = load_demo_model()
    layer = (model.text_model.embeddings, model.vision_model.embeddings)
    bii, fixlip = BilinearIntegratedInteractions(model, layer), WeightedBanzhafInteractions(model, layer)
    rows = []

    def timed(function: Any) -> Any:
        start = time.process_time()
        result = function()
        return result, time.process_time() - start

    for index, scene in enumerate(scenes):
        batch = scene_inputs(scene, tokenizer, processor)
        inputs, extra = (batch["input_ids"], batch["pixel_values"]), ((batch["attention_mask"],), None)
        spans = [tuple(span) for span in scene_spans(scene, tokenizer)[:3]]
        mask = (span_mask(inputs[0].shape[1], spans, rest=False), None)
        options = dict(additional_forward_args=extra)
        full, full_seconds = timed(lambda: bii.attribute(inputs, n_steps=n_steps, **options))
        grouped, grouped_seconds = timed(lambda: bii.attribute(inputs, n_steps=n_steps, feature_mask=mask, **options))
        summed = torch.stack([full[0, start:stop].sum(0) for start, stop in spans])
        agreement = float((grouped[0] - summed).abs().max() / summed.abs().max())
        auto_full, auto_full_seconds = timed(lambda: bii.attribute(inputs, n_steps="auto", tolerance=tolerance,
                                                                   **options))
        auto, auto_seconds = timed(lambda: bii.attribute(inputs, n_steps="auto", tolerance=tolerance,
                                                         feature_mask=mask, **options))
        exact = bii.attribute(inputs, n_steps=reference, feature_mask=mask, **options)
        exact_full = bii.attribute(inputs, n_steps=reference, **options)
        _, fixlip_seconds = timed(lambda: fixlip.attribute(inputs, random_state=0, **options))
        row = {
            "scene": index, "tokens": int(inputs[0].shape[1]), "spans": len(spans),
            "full_fixed": full_seconds, "groups_fixed": grouped_seconds, "groups_vs_full_summed": agreement,
            "full_auto": auto_full_seconds, "groups_auto": auto_seconds, "fixlip": fixlip_seconds,
            "groups_auto_map_error": float((auto - exact).abs().max() / exact.abs().max()),
            "full_auto_map_error": float((auto_full - exact_full).abs().max() / exact_full.abs().max()),
        }
        rows.append(row)
        print(f"groups scene {index}: {row}", file=sys.stderr, flush=True)
    return {"rows": rows, "n_steps": n_steps, "tolerance": tolerance, "reference": reference,
            "ratio_fixed": statistics.median(r["groups_fixed"] / r["full_fixed"] for r in rows),
            "ratio_auto": statistics.median(r["groups_auto"] / r["full_auto"] for r in rows),
            "largest_disagreement": max(r["groups_vs_full_summed"] for r in rows),
            "ratio_groups_auto_fixlip": statistics.median(r["groups_auto"] / r["fixlip"] for r in rows),
            "ratio_full_auto_fixlip": statistics.median(r["full_auto"] / r["fixlip"] for r in rows)}


def scene_spans(scene: Any, tokenizer: Any) -> List[Any]:
    """The token spans of the objects the caption names (the scene records them)."""
    return [tuple(obj.span) for obj in scene.objects if obj.span is not None]


def evaluate_section(scenes: int, directory: str, faithfulness_examples: Any = None) -> Dict[str, Any]:
    out = os.path.join(directory, "evaluation")
    options = [] if faithfulness_examples is None else ["--faithfulness-examples", str(faithfulness_examples)]
    wall = _command("evaluate", "--scenes", str(scenes), "--seed", str(SEED), "--methods", "bii", "fixlip",
                    "--out", out, "--no-progress", *options)
    with open(os.path.join(out, "results.json"), encoding="utf-8") as handle:
        results = json.load(handle)
    methods = results["methods"]
    bii = methods["BilinearIntegratedInteractions"]["seconds_per_pair"]
    fixlip = methods["WeightedBanzhafInteractions"]["seconds_per_pair"]
    pairs = results["dataset"]["examples"]
    return {"scenes": scenes, "pairs": pairs, "wall": wall, "bii_seconds_per_pair": bii,
            "fixlip_seconds_per_pair": fixlip, "ratio": bii / fixlip,
            "wall_over_attribution": wall / ((bii + fixlip) * pairs),
            "faithfulness_examples": results["settings"].get("faithfulness_examples"),
            "tolerance": results["settings"].get("tolerance")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--evaluate-scenes", type=int, default=8)
    parser.add_argument("--faithfulness-examples", default=None,
                        help="evaluate's --faithfulness-examples (default: its own default, 40): the pairs whose BII "
                             "computes the whole matrix; a 300-scene run has 40 of 300")
    parser.add_argument("--n-steps", type=int, default=32)
    parser.add_argument("--tolerance", type=float, default=1e-2)
    parser.add_argument("--reference", type=int, default=512)
    parser.add_argument("--sections", nargs="+", default=["explain", "groups", "evaluate"])
    parser.add_argument("--json")
    args = parser.parse_args()
    scenes = _scenes(args.scenes, SEED)
    report: Dict[str, Any] = {"seed": SEED}
    with tempfile.TemporaryDirectory() as directory:
        if "explain" in args.sections:
            report["explain"] = explain_section(scenes, directory)
        if "groups" in args.sections:
            report["groups"] = groups_section(scenes, args.n_steps, args.tolerance, args.reference)
        if "evaluate" in args.sections:
            report["evaluate"] = evaluate_section(args.evaluate_scenes, directory, args.faithfulness_examples)
    if "explain" in report:
        e = report["explain"]
        print(f"explain ({args.scenes} scenes, wall s, median): BII {e['median_bii']:.1f}, FIxLIP "
              f"{e['median_fixlip']:.1f}, BII page (whole matrix) {e['median_page']:.1f}; BII / FIxLIP "
              f"{e['ratio_bii_fixlip']:.2f} (median of per-scene ratios)")
    if "groups" in report:
        g = report["groups"]
        print(f"groups (3 spans) vs whole matrix, CPU s on one thread: at n_steps={g['n_steps']} ratio "
              f"{g['ratio_fixed']:.2f}, grouped = summed whole to {g['largest_disagreement']:.1e} (largest relative); "
              f"auto at {g['tolerance']:g}: ratio {g['ratio_auto']:.2f}; groups / FIxLIP "
              f"{g['ratio_groups_auto_fixlip']:.2f}, whole / FIxLIP {g['ratio_full_auto_fixlip']:.2f}; map error vs "
              f"N={g['reference']}: groups {max(r['groups_auto_map_error'] for r in g['rows']):.1e}, whole "
              f"{max(r['full_auto_map_error'] for r in g['rows']):.1e} (largest)")
    if "evaluate" in report:
        v = report["evaluate"]
        print(f"evaluate ({v['pairs']} pairs, tolerance {v['tolerance']}, p-faithfulness on the first "
              f"{v['faithfulness_examples']}): BII {v['bii_seconds_per_pair']:.2f} s / pair, FIxLIP "
              f"{v['fixlip_seconds_per_pair']:.2f} s / pair, ratio {v['ratio']:.2f}; wall {v['wall']:.0f} s = "
              f"{v['wall_over_attribution']:.2f} x the attribution seconds")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
