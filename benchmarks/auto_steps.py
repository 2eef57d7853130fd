"""``n_steps="auto"`` against uniform Gauss-Legendre, and the cost per node.

Per pair of held-out demo scenes (a seed used for nothing else), at the demo model's
default layer:

* uniform Gauss-Legendre with N in ``--uniform``: time and relative completeness error;
* ``n_steps="auto", tolerance=--tolerance``: time, nodes chosen, error reached.

The relative completeness error is ``|sum A - I| / |I|`` with the four-term identity
``I = f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)`` computed independently from the HF
model's ``logits_per_text`` on the input and reference captions / images (at the
embeddings layers the references' activations are those of the reference inputs). The
table compares auto with the smallest uniform N that meets the tolerance on *every* pair
(what a user who must pick one N for a dataset pays), side by side in one run. The cost
per node is time / N at N=16 and at N=256 on the same pairs, with the default internal
batching; ``--vit-b32`` adds a ViT-B/32-sized random CLIP at layer -2.

Usage::

    python benchmarks/auto_steps.py                      # 12 pairs, the default layer
    python benchmarks/auto_steps.py --pairs 4 --uniform 16 64 256 --vit-b32 --json out.json
    python benchmarks/auto_steps.py --pairs 2 --per-node 3   # the cost per node only
"""

import argparse
import json
import statistics
import time
from typing import Any, Dict, List

import torch

from captum_bilinear import BilinearIntegratedInteractions
from captum_bilinear.references import black_image, first_positions_of, text_reference

SEED = 20261203  # held-out scenes used by this benchmark only


def demo_pairs(count: int, seed: int = SEED, first: int = 0) -> List[Dict[str, Any]]:
    from captum_bilinear.zoo.demo import load_demo_model, scene_inputs
    from captum_bilinear.zoo.scenes import SceneGenerator

    model, tokenizer, processor = load_demo_model()
    scenes = SceneGenerator(seed, image_size=model.config.vision_config.image_size).scenes(count, start=first)
    pairs = []
    for scene in scenes:
        batch = scene_inputs(scene, tokenizer, processor)
        pairs.append(dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          pixel_values=batch["pixel_values"]))
    return [dict(pair, model=model) for pair in pairs]


def with_references(pair: Dict[str, Any]) -> Dict[str, Any]:
    model = pair["model"]
    ids = pair["input_ids"]
    ends = first_positions_of(ids, model.config.text_config.eos_token_id)
    reference_ids = text_reference(ids, model.config.text_config.pad_token_id, ends)
    return dict(pair, reference_ids=reference_ids, reference_pixels=black_image(pair["pixel_values"]))


def independent_identity(pair: Dict[str, Any]) -> float:
    """``f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)`` from the HF model's own logits (the
    package's HF similarity is the cosine: the logit scale divided out)."""
    model = pair["model"]

    def score(ids: torch.Tensor, pixels: torch.Tensor) -> float:
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=pair["attention_mask"], pixel_values=pixels)
        return float(out.logits_per_text[0, 0] / model.logit_scale.exp())

    a, ra, b, rb = pair["input_ids"], pair["reference_ids"], pair["pixel_values"], pair["reference_pixels"]
    return score(a, b) - score(ra, b) - score(a, rb) + score(ra, rb)


def run(method: BilinearIntegratedInteractions, pair: Dict[str, Any], **options: Any) -> Dict[str, Any]:
    start = time.perf_counter()
    terms = method.attribute_terms((pair["input_ids"], pair["pixel_values"]),
                                   (pair["reference_ids"], pair["reference_pixels"]),
                                   additional_forward_args=((pair["attention_mask"],), None), **options)
    seconds = time.perf_counter() - start
    identity = pair["identity"]
    return {"seconds": seconds, "n_steps": int(terms.n_steps[0]), "evaluated": terms.settings.get("nodes_evaluated", [int(terms.n_steps[0]) * 2])[0],
            "error": abs(float(terms.cross.sum()) - identity) / abs(identity),
            "estimate": float(terms.error[0])}


def measure(pairs: List[Dict[str, Any]], layer: Any, uniform: List[int], tolerance: float,
            first: int = 0) -> Dict[str, Any]:
    method = BilinearIntegratedInteractions(pairs[0]["model"], layer)
    rows = []
    for index, pair in enumerate(pairs):
        pair = with_references(pair)
        pair["identity"] = independent_identity(pair)
        row: Dict[str, Any] = {"pair": index + first, "identity": pair["identity"]}
        run(method, pair, n_steps=8)  # warm-up
        for n in uniform:
            row[f"N={n}"] = run(method, pair, n_steps=n)
        row["auto"] = run(method, pair, n_steps="auto", tolerance=tolerance)
        rows.append(row)
        print(json.dumps(row), flush=True)
    meeting = [n for n in uniform if all(row[f"N={n}"]["error"] <= tolerance for row in rows)]
    summary: Dict[str, Any] = {"pairs": len(rows), "tolerance": tolerance,
                               "auto_seconds": sum(row["auto"]["seconds"] for row in rows),
                               "auto_reached_all": all(row["auto"]["error"] <= tolerance for row in rows),
                               "auto_n_steps": [row["auto"]["n_steps"] for row in rows],
                               "auto_errors": [row["auto"]["error"] for row in rows]}
    for n in uniform:
        summary[f"N={n}_seconds"] = sum(row[f"N={n}"]["seconds"] for row in rows)
        summary[f"N={n}_pairs_meeting"] = sum(row[f"N={n}"]["error"] <= tolerance for row in rows)
        summary[f"N={n}_seconds_per_node"] = statistics.median(row[f"N={n}"]["seconds"] / n for row in rows)
    if meeting:
        smallest = meeting[0]
        summary["smallest_uniform_N_meeting_all"] = smallest
        summary["auto_time_ratio"] = summary["auto_seconds"] / summary[f"N={smallest}_seconds"]
    if 16 in uniform and 256 in uniform:
        summary["per_node_ratio_256_vs_16"] = summary["N=256_seconds_per_node"] / summary["N=16_seconds_per_node"]
    return {"rows": rows, "summary": summary}


def per_node_cost(pairs: List[Dict[str, Any]], layer: Any, repeats: int, internal_batch_size: Any = None) -> Dict[str, Any]:
    """Seconds per node at N=16 and N=256 on the same pairs, the two interleaved (so a
    busy spell of the machine hits both), medians over ``repeats``."""
    method = BilinearIntegratedInteractions(pairs[0]["model"], layer)
    times: Dict[int, List[float]] = {16: [], 256: []}
    for pair in pairs:
        pair = with_references(pair)
        run_options = dict(internal_batch_size=internal_batch_size)
        method.attribute_terms((pair["input_ids"], pair["pixel_values"]), n_steps=8)  # warm-up
        for _ in range(repeats):
            for n in (16, 256):
                start = time.perf_counter()
                method.attribute_terms((pair["input_ids"], pair["pixel_values"]),
                                       (pair["reference_ids"], pair["reference_pixels"]),
                                       additional_forward_args=((pair["attention_mask"],), None), n_steps=n,
                                       **run_options)
                times[n].append((time.perf_counter() - start) / n)
    per_node = {n: statistics.median(values) for n, values in times.items()}
    return {"seconds_per_node": per_node, "ratio_256_vs_16": per_node[256] / per_node[16],
            "internal_batch_size": internal_batch_size, "samples": times}


def vit_b32_pairs(count: int) -> List[Dict[str, Any]]:
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(text_config=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                                         num_attention_heads=8, max_position_embeddings=77),
                        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                           num_attention_heads=12, image_size=224, patch_size=32),
                        projection_dim=512)
    model = CLIPModel(config).eval()
    generator = torch.Generator().manual_seed(1)
    pairs = []
    for _ in range(count):
        ids = torch.cat([torch.tensor([49406]), torch.randint(400, 40000, (10,), generator=generator),
                         torch.tensor([49407])])[None]
        pairs.append(dict(model=model, input_ids=ids, attention_mask=torch.ones_like(ids),
                          pixel_values=torch.randn(1, 3, 224, 224, generator=generator)))
    return pairs


def main() -> None:
    from captum_bilinear.zoo.demo import default_layers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--uniform", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--vit-b32", action="store_true", help="also a ViT-B/32-sized random CLIP at layer -2")
    parser.add_argument("--layer", default=None, help="'embeddings' or an encoder layer index (default: the "
                        "demo model's default layer)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--first", type=int, default=0, help="index of the first scene (to split a run)")
    parser.add_argument("--per-node", type=int, metavar="REPEATS",
                        help="only the cost per node: N=16 and N=256 interleaved, REPEATS times per pair, with "
                             "the default internal batching and with all of a pair's rows in one pass")
    parser.add_argument("--json", help="write the rows and summaries here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    pairs = demo_pairs(args.pairs, first=args.first)
    model = pairs[0]["model"]
    if args.per_node:
        layer = default_layers(model, None if args.layer is None else args.layer if args.layer == "embeddings"
                               else int(args.layer))
        results["per_node"] = [per_node_cost(pairs, layer, args.per_node),
                               per_node_cost(pairs, layer, args.per_node, internal_batch_size=10**9)]
        print(json.dumps([{k: v for k, v in r.items() if k != "samples"} for r in results["per_node"]], indent=1))
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(results, handle, indent=1)
        return
    layer = None if args.layer is None else args.layer if args.layer == "embeddings" else int(args.layer)
    results["demo"] = measure(pairs, default_layers(model, layer), args.uniform, args.tolerance, args.first)
    print("demo", json.dumps(results["demo"]["summary"], indent=1), flush=True)
    if args.vit_b32:
        pairs = vit_b32_pairs(max(2, args.pairs // 4))
        model = pairs[0]["model"]
        layer = (model.text_model.encoder.layers[-2], model.vision_model.encoder.layers[-2])
        results["vit_b32"] = measure(pairs, layer, args.uniform, args.tolerance)
        print("vit_b32", json.dumps(results["vit_b32"]["summary"], indent=1), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
