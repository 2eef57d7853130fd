"""How accurate must BII's quadrature be for the evaluation's metrics?

``captum-bilinear evaluate --methods bii`` on held-out scenes of the demo world (a seed
used for nothing else) at each ``--tolerances`` and at a reference tolerance, every run
with p-faithfulness on every pair (``--faithfulness-examples all``, so that its
correlation is compared too). Per tolerance, against the reference: objects whose PGA
changed, the largest change of PGE, CID, CII, CTD, CTI, of the hard negatives' δA (relative
to the reference's |δA|) and of p-faithfulness, the object-discrimination shares, and
BII's seconds per pair. The evaluation's default tolerance is the largest one that
changes no PGA and moves no other metric by more than ``--allowed`` (docs: Evaluation).

Usage::

    python benchmarks/evaluation_tolerance.py --scenes 12 --tolerances 0.1 0.03 0.01 0.001 --reference 1e-5
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, List

SEED = 20261209  # held-out scenes used by this measurement only
CURVES = ("PGE", "CID", "CII", "CTD", "CTI")


def run(tolerance: float, scenes: int, directory: str) -> Dict[str, Any]:
    out = os.path.join(directory, f"tolerance-{tolerance:g}")
    subprocess.run([sys.executable, "-m", "captum_bilinear", "evaluate", "--scenes", str(scenes), "--seed",
                    str(SEED), "--methods", "bii", "--tolerance", str(tolerance), "--faithfulness-examples", "all",
                    "--completeness-examples", "0", "--out", out, "--no-progress"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records: List[Dict[str, Any]] = []
    for name in sorted(os.listdir(os.path.join(out, "records"))):
        with open(os.path.join(out, "records", name), encoding="utf-8") as handle:
            records += [json.loads(line) for line in handle if line.strip()]
    with open(os.path.join(out, "results.json"), encoding="utf-8") as handle:
        results = json.load(handle)
    return {"records": records, "summary": results["methods"]["BilinearIntegratedInteractions"]}


def keyed(records: List[Dict[str, Any]], kind: str, key: str) -> Dict[Any, Dict[str, Any]]:
    return {(r.get("example_id"), r.get(key)): r for r in records if r.get("kind") == kind}


def compare(run_: Dict[str, Any], reference: Dict[str, Any]) -> Dict[str, Any]:
    objects, ref_objects = keyed(run_["records"], "object", "object"), keyed(reference["records"], "object", "object")
    negatives = keyed(run_["records"], "negative", "negative")
    ref_negatives = keyed(reference["records"], "negative", "negative")
    examples, ref_examples = keyed(run_["records"], "example", "method"), keyed(reference["records"], "example", "method")
    result: Dict[str, Any] = {
        "objects": len(ref_objects),
        "PGA_changed": sum(objects[k]["PGA"] != r["PGA"] for k, r in ref_objects.items()),
        "delta_A_relative": max((abs(negatives[k]["delta_A"] - r["delta_A"]) / max(abs(r["delta_A"]), 1e-12)
                                 for k, r in ref_negatives.items()), default=0.0),
        "delta_A_sign_changed": sum((negatives[k]["delta_A"] < 0) != (r["delta_A"] < 0) for k, r in ref_negatives.items()),
        "p_faithfulness": max((abs(examples[k]["p_faithfulness"] - r["p_faithfulness"]) for k, r in ref_examples.items()),
                              default=0.0),
        "seconds_per_pair": run_["summary"]["seconds_per_pair"],
    }
    for key in CURVES:
        result[key] = max((abs(objects[k][key] - r[key]) for k, r in ref_objects.items() if key in r), default=0.0)
    for key in ("own_positive", "cross_negative", "own_above_cross"):
        result[key] = (run_["summary"][key], reference["summary"][key])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--tolerances", type=float, nargs="+", default=[0.1, 0.03, 0.01, 0.001])
    parser.add_argument("--reference", type=float, default=1e-5)
    parser.add_argument("--allowed", type=float, default=1e-3)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        reference = run(args.reference, args.scenes, directory)
        rows = {}
        for tolerance in args.tolerances:
            rows[tolerance] = compare(run(tolerance, args.scenes, directory), reference)
            print(f"tolerance {tolerance:g}: {rows[tolerance]}", file=sys.stderr, flush=True)
    print(f"{args.scenes} scenes (seed {SEED}), reference tolerance {args.reference:g}, BII at the demo model's "
          f"default layer; largest change against the reference")
    print("tolerance | PGA changed | PGE | CID | CII | CTD | CTI | dA (rel.) | dA sign | p-faith | s / pair")
    for tolerance, row in rows.items():
        print(f"{tolerance:g} | {row['PGA_changed']} of {row['objects']} | " +
              " | ".join(f"{row[key]:.1e}" for key in CURVES) +
              f" | {row['delta_A_relative']:.1e} | {row['delta_A_sign_changed']} | {row['p_faithfulness']:.1e} | "
              f"{row['seconds_per_pair']:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"seed": SEED, "scenes": args.scenes, "reference": args.reference,
                       "rows": {str(k): v for k, v in rows.items()}}, handle, indent=1)


if __name__ == "__main__":
    main()
