"""Speed, memory and completeness error: captum-bilinear against the reference implementation.

Each configuration runs in its own subprocess (so its peak RSS is its own) and the table
is printed by one parent run, side by side:

* ``captum-bilinear``: ``BilinearIntegratedInteractions`` on a HF ``CLIPModel`` with random
  weights of ViT-B/32 or ViT-B/16 size, layer -2 on both sides (the second-last hidden
  state), a caption of the given length;
* ``exclip`` (PyPI ``exclip``, the paper's code), when importable: ``OpenClipExplainer``
  on ``open_clip.create_model("ViT-B-32" / "ViT-B-16", pretrained=None)``, hooked at the
  input of the last block (the same second-last hidden state).

Times are medians over ``--repeats`` calls after one warm-up call; the completeness error is
``|sum A - [f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)]|`` (exclip returns its map without the
CLS column, so its sum is taken as returned). The cost floor is the time of the passes the
algorithm cannot avoid: ``positions_a x N`` forward+backward passes of the layers above
the attributed one on each side, timed as two plain batched passes.

Usage::

    python benchmarks/speed.py                       # the core setup: ViT-B/32, 12 tokens, N=8
    python benchmarks/speed.py --sweep               # N in 4 8 16 50, tokens 8 20 40, B/32
    python benchmarks/speed.py --vit B16 --tokens 20 --n-steps 50 --internal-batch-size 64 --no-exclip
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def _caption_ids(tokens: int, seed: int) -> List[int]:
    """BOS, tokens - 2 random content ids, EOS (CLIP's ids)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    content = torch.randint(400, 40000, (tokens - 2,), generator=generator).tolist()
    return [49406, *content, 49407]


def _image(size: int, seed: int) -> Any:
    import torch

    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))


def _time_calls(call: Any, repeats: int) -> List[float]:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def run_captum_bilinear(config: Dict[str, Any]) -> Dict[str, Any]:
    import torch
    from transformers import CLIPConfig, CLIPModel

    from captum_bilinear import BilinearIntegratedInteractions
    from captum_bilinear._utils.encoder_side import EncoderSide
    from captum_bilinear._utils.layer_hooks import LayerTap

    torch.set_num_threads(config["threads"])
    torch.manual_seed(0)
    patch = 32 if config["vit"] == "B32" else 16
    model = CLIPModel(CLIPConfig(vision_config=dict(patch_size=patch))).eval()
    input_ids = torch.tensor([_caption_ids(config["tokens"], config["seed"])])
    pixel_values = _image(224, config["seed"])
    layer = (model.text_model.encoder.layers[-2], model.vision_model.encoder.layers[-2])
    bii = BilinearIntegratedInteractions(model, layer)
    rss_model = _peak_rss_gb()
    result: Dict[str, Any] = {}

    def call() -> None:
        A, delta = bii.attribute(
            (input_ids, pixel_values), n_steps=config["n_steps"], return_convergence_delta=True,
            internal_batch_size=config["internal_batch_size"],
        )
        result.update(error=abs(delta.item()), sum=A.sum().item(), shape=list(A.shape))

    times = _time_calls(call, config["repeats"])
    terms = bii.similarity_terms((input_ids, pixel_values))

    # Cost floor: positions_a x N rows through the layers above the attributed one, forward
    # and backward, on each side (one batched pass per side, chunked like the method).
    rows = config["tokens"] * config["n_steps"]
    chunk = config["internal_batch_size"] or rows

    def floor() -> None:
        for embed, inputs, module in (
            (bii.dual_encoder.embed_a, (input_ids,), layer[0]),
            (bii.dual_encoder.embed_b, (pixel_values,), layer[1]),
        ):
            side = EncoderSide(embed, inputs, (), LayerTap(module))
            activation = side.activation()
            for start in range(0, rows, chunk):
                batch = activation.expand(min(chunk, rows - start), *activation.shape[1:]).clone().requires_grad_(True)
                with torch.enable_grad():
                    torch.autograd.grad(side.embed_from(batch).sum(), batch)

    floor_times = _time_calls(floor, config["repeats"])
    return dict(
        seconds=statistics.median(times),
        floor_seconds=statistics.median(floor_times),
        peak_rss_gb=_peak_rss_gb(),
        rss_after_model_gb=rss_model,
        interaction=terms.interaction.item(),
        similarity=terms.similarity.item(),
        **result,
    )


def run_exclip(config: Dict[str, Any]) -> Dict[str, Any]:
    import open_clip
    import torch
    from exclip.explanation import OpenClipExplainer

    torch.set_num_threads(config["threads"])
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32" if config["vit"] == "B32" else "ViT-B-16", pretrained=None).eval()
    explainer = OpenClipExplainer(model, device=torch.device("cpu"))
    ids = _caption_ids(config["tokens"], config["seed"])
    text = torch.zeros(1, 77, dtype=torch.long)
    text[0, : len(ids)] = torch.tensor(ids)
    image = _image(224, config["seed"])
    rss_model = _peak_rss_gb()
    last = len(model.transformer.resblocks) - 1  # hook at its input = the second-last hidden state
    result: Dict[str, Any] = {}

    def call() -> None:
        A, score, text_ref, image_ref, both_ref = explainer.explain(
            text, image, text_layer=last, image_layer=last, N=config["n_steps"], compute_lhs_terms=True
        )
        identity = score - text_ref - image_ref + both_ref
        result.update(error=abs(A.sum().item() - identity), sum=A.sum().item(), interaction=identity,
                      similarity=score, shape=list(A.shape))

    times = _time_calls(call, config["repeats"])
    return dict(seconds=statistics.median(times), peak_rss_gb=_peak_rss_gb(), rss_after_model_gb=rss_model, **result)


def _run_worker(implementation: str, config: Dict[str, Any]) -> Dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), "--worker", implementation, json.dumps(config)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        return dict(failed=completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "failed")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _exclip_available() -> bool:
    try:
        import exclip  # noqa: F401
        import open_clip  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vit", choices=["B32", "B16"], default="B32")
    parser.add_argument("--tokens", type=int, nargs="+", default=[12])
    parser.add_argument("--n-steps", type=int, nargs="+", default=[8])
    parser.add_argument("--exclip-n-steps", type=int, nargs="+", default=None,
                        help="N for exclip (default: the same as --n-steps)")
    parser.add_argument("--internal-batch-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true", help="N in 4 8 16 50 and tokens 8 20 40")
    parser.add_argument("--no-exclip", action="store_true")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        implementation, config = args.worker[0], json.loads(args.worker[1])
        run = run_captum_bilinear if implementation == "captum-bilinear" else run_exclip
        print(json.dumps(run(config)))
        return

    if args.sweep:
        args.n_steps, args.tokens = [4, 8, 16, 50], [8, 20, 40]
    use_exclip = not args.no_exclip and _exclip_available()
    if not args.no_exclip and not use_exclip:
        print("exclip / open_clip not importable: measuring captum-bilinear only", file=sys.stderr)
    header = f"{'impl':<16}{'ViT':<5}{'tokens':>7}{'N':>5}{'seconds':>10}{'floor s':>9}{'peak GB':>9}" \
             f"{'|error|':>11}{'identity':>11}{'rel.err':>10}{'speed-up':>10}"
    print(f"threads={args.threads}, repeats={args.repeats} (median), python {sys.version.split()[0]}")
    print(header)
    rows = []
    for tokens in args.tokens:
        for n_steps in args.n_steps:
            config = dict(vit=args.vit, tokens=tokens, n_steps=n_steps, internal_batch_size=args.internal_batch_size,
                          repeats=args.repeats, threads=args.threads, seed=args.seed)
            ours = _run_worker("captum-bilinear", config)
            ours.update(impl="captum-bilinear", **config)
            rows.append(ours)
            theirs = None
            exclip_steps = args.exclip_n_steps or args.n_steps
            if use_exclip and n_steps in exclip_steps:
                theirs = _run_worker("exclip", dict(config, repeats=1))
                theirs.update(impl="exclip", **config)
                rows.append(theirs)
            for row in (ours, theirs):
                if row is None:
                    continue
                if "failed" in row:
                    print(f"{row['impl']:<16}{args.vit:<5}{tokens:>7}{n_steps:>5}  failed: {row['failed']}")
                    continue
                speedup = ""
                if row is ours and theirs and "seconds" in theirs:
                    speedup = f"{theirs['seconds'] / ours['seconds']:.1f}x"
                floor = f"{row['floor_seconds']:.2f}" if "floor_seconds" in row else "-"
                row["relative_error"] = row["error"] / max(abs(row["interaction"]), 1e-30)
                print(f"{row['impl']:<16}{args.vit:<5}{tokens:>7}{n_steps:>5}{row['seconds']:>10.2f}{floor:>9}"
                      f"{row['peak_rss_gb']:>9.2f}{row['error']:>11.2e}{row['interaction']:>11.2e}"
                      f"{row['relative_error']:>10.1e}{speedup:>10}", flush=True)
    _equal_accuracy(rows)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


def _equal_accuracy(rows: List[Dict[str, Any]]) -> None:
    """Per caption length: exclip's best relative completeness error over the N it ran
    (its floor, when more N does not lower it) and the fewest nodes at which
    captum-bilinear's error is at or below it, with both times."""
    done = [row for row in rows if "relative_error" in row]
    for tokens in sorted({row["tokens"] for row in done}):
        theirs = [row for row in done if row["impl"] == "exclip" and row["tokens"] == tokens]
        ours = sorted((row for row in done if row["impl"] == "captum-bilinear" and row["tokens"] == tokens),
                      key=lambda row: row["n_steps"])
        if not theirs or not ours:
            continue
        best = min(theirs, key=lambda row: row["relative_error"])
        passing = [row for row in ours if row["relative_error"] <= best["relative_error"]]
        errors = ", ".join(f"N={row['n_steps']}: {row['relative_error']:.1e}" for row in sorted(theirs, key=lambda r: r["n_steps"]))
        print(f"\nequal accuracy, {tokens} tokens: exclip relative error {errors}; best {best['relative_error']:.1e} "
              f"at N={best['n_steps']} in {best['seconds']:.1f} s")
        if passing:
            first = passing[0]
            print(f"  captum-bilinear reaches it at N={first['n_steps']} (relative error {first['relative_error']:.1e}) "
                  f"in {first['seconds']:.2f} s: {best['seconds'] / first['seconds']:.0f}x faster at equal accuracy")
        else:
            print("  captum-bilinear does not reach it at the N measured")


if __name__ == "__main__":
    main()
