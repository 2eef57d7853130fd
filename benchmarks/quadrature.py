"""``n_steps="auto"`` of two source trees side by side: nodes, time and map error.

Per pair of held-out demo scenes (a seed used for nothing else), at the demo model's
embeddings, every tree in ``--trees`` runs BII with ``n_steps="auto"`` at each
``--tolerance`` (the whole matrix, each in a fresh process on one thread, trees
interleaved pair by pair so that the machine's load falls on all alike). Each result is
compared with uniform Gauss-Legendre N = ``--reference`` nodes (computed once per pair by
the first tree: fixed rules are the same code in every tree), as the relative map error
``max |A - A_ref| / max |A_ref|``. Printed per tree and tolerance: median and largest
nodes of the final rule, nodes evaluated, median seconds, the largest map error and,
where the tree reports one, the largest ratio of the error reached to its estimate; and
the time ratio to the first tree, the median over pairs of per-pair ratios.

Usage::

    python benchmarks/quadrature.py --trees /path/to/old /path/to/new --pairs 12 --json out.json
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

SEED = 20261207  # held-out scenes used by this benchmark only


def _pair(index: int, seed: int) -> Dict[str, Any]:
    from captum_bilinear.zoo.demo import load_demo_model, scene_inputs
    from captum_bilinear.zoo.scenes import SceneGenerator

    model, tokenizer, processor = load_demo_model()
    scene = SceneGenerator(seed, image_size=model.config.vision_config.image_size).scene(index)
    batch = scene_inputs(scene, tokenizer, processor)
    return dict(model=model, inputs=(batch["input_ids"], batch["pixel_values"]),
                extra=((batch["attention_mask"],), None))


def worker(args: argparse.Namespace) -> None:
    """One pair in this process: the reference or every tolerance; JSON to ``args.out``."""
    import torch

    from captum_bilinear import BilinearIntegratedInteractions

    torch.set_num_threads(1)
    pair = _pair(args.index, args.seed)
    model = pair["model"]
    bii = BilinearIntegratedInteractions(model, (model.text_model.embeddings, model.vision_model.embeddings))
    results: Dict[str, Any] = {}
    if args.reference:
        matrix = bii.attribute(pair["inputs"], additional_forward_args=pair["extra"], n_steps=args.reference)
        results["reference"] = matrix[0].double().numpy().tolist()
    for tolerance in args.tolerance or []:
        start = time.perf_counter()
        terms = bii.attribute_terms(pair["inputs"], additional_forward_args=pair["extra"], n_steps="auto",
                                    tolerance=tolerance)
        seconds = time.perf_counter() - start
        results[str(tolerance)] = {
            "seconds": seconds, "nodes": int(terms.n_steps[0]), "evaluated": int(terms.settings["nodes_evaluated"][0]),
            "estimate": float(terms.error[0]), "delta": float(terms.delta[0]),
            "matrix": terms.cross[0].double().numpy().tolist(),
        }
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(results, handle)


def run_worker(tree: str, index: int, seed: int, tolerances: List[float], reference: int) -> Dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--index", str(index), "--seed", str(seed),
               "--out", out]
    if tolerances:
        command += ["--tolerance", *map(str, tolerances)]
    if reference:
        command += ["--reference", str(reference)]
    environment = dict(os.environ, PYTHONPATH=tree, OMP_NUM_THREADS="1")
    subprocess.run(command, env=environment, cwd=tree, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out, encoding="utf-8") as handle:
        results = json.load(handle)
    os.unlink(out)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs="+", default=[os.path.dirname(os.path.dirname(os.path.abspath(__file__)))])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--tolerance", type=float, nargs="+", default=None)
    parser.add_argument("--reference", type=int, default=0)
    parser.add_argument("--json")
    parser.add_argument("--cache", help="a folder keeping the reference matrices between runs")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--index", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    import numpy as np

    tolerances = args.tolerance or [1e-2, 1e-3, 1e-4]
    reference = args.reference or 512
    rows: Dict[str, Dict[str, List[Dict[str, float]]]] = {t: {str(x): [] for x in tolerances} for t in args.trees}
    for index in range(args.first, args.first + args.pairs):
        cached = args.cache and os.path.join(args.cache, f"reference-{args.seed}-{index}-{reference}.npy")
        if cached and os.path.exists(cached):
            ref = np.load(cached)
        else:
            ref = np.array(run_worker(args.trees[0], index, args.seed, [], reference)["reference"])
            if cached:
                os.makedirs(args.cache, exist_ok=True)
                np.save(cached, ref)
        for tree in args.trees:
            results = run_worker(tree, index, args.seed, tolerances, 0)
            for tolerance in tolerances:
                result = results[str(tolerance)]
                error = float(np.abs(np.array(result.pop("matrix")) - ref).max() / np.abs(ref).max())
                rows[tree][str(tolerance)].append(dict(result, error=error, pair=index))
        print(f"pair {index} done", file=sys.stderr, flush=True)
    print(f"{args.pairs} pairs (seed {args.seed}), reference Gauss-Legendre N = {reference}; one thread per process")
    print("tree | tolerance | nodes median (max) | evaluated median (max) | s median | max map error | "
          "max error / estimate | time / first tree")
    for tree in args.trees:
        for tolerance in tolerances:
            cells = rows[tree][str(tolerance)]
            firsts = rows[args.trees[0]][str(tolerance)]
            nodes = [c["nodes"] for c in cells]
            evaluated = [c["evaluated"] for c in cells]
            over = [c["error"] / c["estimate"] for c in cells if c["estimate"] == c["estimate"] and c["estimate"] > 0]
            ratio = statistics.median(c["seconds"] / f["seconds"] for c, f in zip(cells, firsts))
            print(f"{tree} | {tolerance:g} | {statistics.median(nodes):g} ({max(nodes)}) | "
                  f"{statistics.median(evaluated):g} ({max(evaluated)}) | "
                  f"{statistics.median(c['seconds'] for c in cells):.2f} | {max(c['error'] for c in cells):.1e} | "
                  f"{max(over) if over else float('nan'):.2f} | {ratio:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"seed": args.seed, "reference": reference, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
