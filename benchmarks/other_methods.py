"""Speed and memory of the interaction methods other than BII on a ViT-B/32-sized CLIP.

WeightedBanzhafInteractions (FIxLIP) with budget 2**14, cross-modal + first-order terms,
InteractionLIME with 1000 samples, InteractionCAM and TokenPatchSimilarity (ITSM-O), on a
random ``CLIPModel(CLIPConfig())`` with 50 image positions and a 12-token caption, layer
-2 on both sides (BII: ``benchmarks/speed.py``). Each method runs in its
own subprocess (its own peak RSS); times are medians of ``--repeats`` calls after a
warm-up call.

Usage::

    python benchmarks/other_methods.py [--repeats 3] [--threads 2]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Dict


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run(method_name: str, repeats: int, threads: int) -> Dict[str, Any]:
    import torch
    from transformers import CLIPConfig, CLIPModel

    from captum_bilinear import InteractionCAM, InteractionLIME, TokenPatchSimilarity, WeightedBanzhafInteractions

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig()).eval()
    input_ids = torch.tensor([[49406] + torch.randint(400, 40000, (10,)).tolist() + [49407]])
    pixel_values = torch.randn(1, 3, 224, 224)
    layer = (model.text_model.encoder.layers[-2], model.vision_model.encoder.layers[-2])
    model_rss = _peak_rss_gb()
    if method_name == "WeightedBanzhafInteractions":
        method = WeightedBanzhafInteractions(model, layer, p=0.5)

        def call() -> Any:
            return method.attribute_terms((input_ids, pixel_values), budget=2**14, random_state=0)
    elif method_name == "InteractionLIME":
        lime = InteractionLIME(model, layer)

        def call() -> Any:
            return lime.attribute((input_ids, pixel_values), n_samples=1000, random_state=0)
    else:
        gradient_method = InteractionCAM(model, layer) if method_name == "InteractionCAM" else \
            TokenPatchSimilarity(model, layer, variant="output")

        def call() -> Any:
            return gradient_method.attribute((input_ids, pixel_values))

    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return dict(method=method_name, seconds=statistics.median(times), times=times, peak_rss_gb=_peak_rss_gb(),
                rss_after_model_gb=model_rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run(args.worker, args.repeats, args.threads)))
        return
    print(f"threads={args.threads}, repeats={args.repeats} (median after a warm-up call)")
    print(f"{'method':<30}{'budget':>16}{'seconds':>10}{'peak GB':>9}{'model GB':>10}")
    methods = (("WeightedBanzhafInteractions", "2^14 values"), ("InteractionLIME", "1000 samples"),
               ("InteractionCAM", "-"), ("TokenPatchSimilarity", "-"))
    for name, budget in methods:
        command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--repeats", str(args.repeats),
                   "--threads", str(args.threads)]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            print(f"{name:<30} failed: {completed.stderr.strip().splitlines()[-1]}")
            continue
        row = json.loads(completed.stdout.strip().splitlines()[-1])
        print(f"{name:<30}{budget:>16}{row['seconds']:>10.2f}{row['peak_rss_gb']:>9.2f}{row['rss_after_model_gb']:>10.2f}")


if __name__ == "__main__":
    main()
