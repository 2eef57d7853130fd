"""The GPU path, ready for a machine that has one (none is lent here): half precision and
``torchrun`` over NCCL.

What it measures, on the demo model and on a ViT-B/32-sized random CLIP (layer -2):

1. **Precision.** BII in float32, float16 and bfloat16 on ``--device`` (the model cast to
   the dtype; nodes and sums stay in float32): seconds per pair (medians of
   ``--repeats`` calls after a warm-up, ``torch.cuda.synchronize`` around each), peak
   memory (``torch.cuda.max_memory_allocated``), and the relative map error of each half
   precision against float32 at the same nodes (``n_steps=--n-steps``) and with
   ``n_steps="auto"`` (figure tolerance).
2. **Grouped vs full** on the device: three caption spans as groups against the whole
   matrix at the same nodes (the time ratio the CPU run measures, where the passes are
   batched differently).
3. **Distributed evaluation.** ``torchrun --nproc-per-node K -m captum_bilinear evaluate
   --device cuda`` (one GPU per rank, NCCL) against one process on one GPU, the same
   scenes: wall time, and that the two ``results.json`` tables are equal.

Usage (on a CUDA machine, from a checkout with the package installed)::

    python benchmarks/cuda.py --json cuda.json                       # everything, K = all GPUs
    python benchmarks/cuda.py --sections precision --repeats 5
    python benchmarks/cuda.py --device cpu --sections precision grouped --repeats 1 --vit-b32-tokens 0
        # a dry run of the code paths on the CPU (slow; half precision runs there too)

Without CUDA and without ``--device cpu`` it says so and exits with status 2.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

SEED = 20261210  # held-out scenes used by this benchmark only


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(function: Callable[[], Any], device: Any, repeats: int) -> Tuple[Any, float]:
    function()  # warm-up
    seconds: List[float] = []
    result = None
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        result = function()
        _synchronize(device)
        seconds.append(time.perf_counter() - start)
    return result, statistics.median(seconds)


def _models(device: Any, vit_tokens: int) -> List[Tuple[str, Any, Tuple[Any, Any], Any, Any]]:
    """(name, model, layers, inputs, extra) of the demo model on a held-out scene and a
    ViT-B/32-sized random CLIP with a ``vit_tokens`` caption (0: left out)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    from captum_bilinear.zoo import SceneGenerator, load_demo_model, scene_inputs

    model, tokenizer, processor = load_demo_model()
    batch = scene_inputs(SceneGenerator(SEED, mode="full").scene(0), tokenizer, processor)
    demo = ("demo CLIP (embeddings)", model.to(device),
            (model.text_model.embeddings, model.vision_model.embeddings),
            (batch["input_ids"].to(device), batch["pixel_values"].to(device)),
            ((batch["attention_mask"].to(device),), None))
    models = [demo]
    if vit_tokens:
        torch.manual_seed(0)
        vit = CLIPModel(CLIPConfig()).eval().to(device)
        ids = torch.randint(1, 49405, (1, vit_tokens), device=device)
        ids[0, 0], ids[0, -1] = 49406, 49407
        pixels = torch.randn(1, 3, 224, 224, device=device)
        models.append((f"ViT-B/32 random (layer -2, {vit_tokens} tokens)", vit,
                       (vit.text_model.encoder.layers[-2], vit.vision_model.encoder.layers[-2]), (ids, pixels),
                       None))
    return models


def precision_section(device: Any, repeats: int, n_steps: int, tolerance: float, vit_tokens: int) -> List[Dict[str, Any]]:
    import torch

    from captum_bilinear import BilinearIntegratedInteractions

    rows = []
    for name, model, layers, inputs, extra in _models(device, vit_tokens):
        reference = None
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            model.to(dtype)
            cast = tuple(x.to(dtype) if x.is_floating_point() else x for x in inputs)
            bii = BilinearIntegratedInteractions(model, layers)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            fixed, seconds = _timed(lambda: bii.attribute(cast, additional_forward_args=extra, n_steps=n_steps),
                                    device, repeats)
            auto, auto_seconds = _timed(lambda: bii.attribute(cast, additional_forward_args=extra, n_steps="auto",
                                                              tolerance=tolerance), device, repeats)
            fixed = fixed.float().cpu()
            if reference is None:
                reference = fixed
            row = {"model": name, "dtype": str(dtype).split(".")[-1], "seconds_fixed": seconds,
                   "seconds_auto": auto_seconds,
                   "map_error_vs_float32": float((fixed - reference).abs().max() / reference.abs().max()),
                   "peak_gb": torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None}
            rows.append(row)
            print(f"precision: {row}", file=sys.stderr, flush=True)
        model.to(torch.float32)
    return rows


def grouped_section(device: Any, repeats: int, n_steps: int, vit_tokens: int) -> List[Dict[str, Any]]:
    from captum_bilinear import BilinearIntegratedInteractions
    from captum_bilinear.selection import span_mask

    rows = []
    for name, model, layers, inputs, extra in _models(device, vit_tokens):
        bii = BilinearIntegratedInteractions(model, layers)
        positions = inputs[0].shape[1]
        spans = [(1, 3), (3, 5), (5, min(7, positions - 1))]
        mask = (span_mask(positions, spans, rest=False).to(device), None)
        full, full_seconds = _timed(lambda: bii.attribute(inputs, additional_forward_args=extra, n_steps=n_steps),
                                    device, repeats)
        grouped, grouped_seconds = _timed(lambda: bii.attribute(inputs, additional_forward_args=extra,
                                                                n_steps=n_steps, feature_mask=mask), device, repeats)
        import torch

        summed = torch.stack([full[0, a:b].sum(0) for a, b in spans])
        rows.append({"model": name, "seconds_full": full_seconds, "seconds_groups": grouped_seconds,
                     "ratio": grouped_seconds / full_seconds,
                     "agreement": float((grouped[0].cpu() - summed.cpu()).abs().max() / summed.abs().max())})
        print(f"grouped: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def distributed_section(scenes: int, processes: int, device: str) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        common = ["evaluate", "--scenes", str(scenes), "--seed", str(SEED), "--device", device, "--no-progress"]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "captum_bilinear", *common, "--out", os.path.join(directory, "one")],
                       check=True)
        one = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(["torchrun", "--nproc-per-node", str(processes), "-m", "captum_bilinear", *common,
                        "--out", os.path.join(directory, "many")], check=True)
        many = time.perf_counter() - start
        tables = []
        for run in ("one", "many"):
            with open(os.path.join(directory, run, "results.json"), encoding="utf-8") as handle:
                tables.append(json.load(handle)["methods"])
    keys = ("PGA", "mPGE", "CID", "CII", "CTD", "CTI")
    equal = all(abs(tables[0][m][k] - tables[1][m][k]) <= 1e-6 for m in tables[0] for k in keys
                if tables[0][m].get(k) == tables[0][m].get(k))
    return {"scenes": scenes, "processes": processes, "seconds_one": one, "seconds_torchrun": many,
            "speed_up": one / many, "tables_equal": equal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sections", nargs="+", default=["precision", "grouped", "distributed"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-steps", type=int, default=64)
    parser.add_argument("--tolerance", type=float, default=1e-2)
    parser.add_argument("--vit-b32-tokens", type=int, default=12)
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--processes", type=int, default=0, help="torchrun ranks (default: every GPU)")
    parser.add_argument("--json")
    args = parser.parse_args()
    import torch

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("benchmarks/cuda.py: CUDA is not available here; run it on a GPU machine, or pass --device cpu "
              "for a dry run of its code paths", file=sys.stderr)
        sys.exit(2)
    report: Dict[str, Any] = {"device": str(device), "torch": torch.__version__,
                              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    if "precision" in args.sections:
        report["precision"] = precision_section(device, args.repeats, args.n_steps, args.tolerance,
                                                args.vit_b32_tokens)
    if "grouped" in args.sections:
        report["grouped"] = grouped_section(device, args.repeats, args.n_steps, args.vit_b32_tokens)
    if "distributed" in args.sections:
        processes = args.processes or (torch.cuda.device_count() if device.type == "cuda" else 2)
        report["distributed"] = distributed_section(args.scenes, processes, args.device)
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
