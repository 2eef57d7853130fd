"""Train the demo CLIP model (or the SigLIP-2 demo model) on generated scenes.

Usage::

    python -m captum_bilinear.zoo.train --out DIR [--steps 2400 --batch 128 --lr 1e-3 ...]
    python -m captum_bilinear.zoo.train --family siglip2 --out DIR [--steps ...]

Writes into ``DIR``: ``model.safetensors`` + ``config.json`` (a ``transformers.CLIPModel``),
the tokenizer files (by default copied from the shipped demo model, so token ids stay
the same; ``--tokenizer new`` builds them), ``preprocessor_config.json`` and
``training_settings.json`` (every setting, the wall time and the final held-out
retrieval). To ship a run, copy these files into ``captum_bilinear/zoo/demo_model/`` and
run ``python -m captum_bilinear.zoo.measure_layers --write`` (adds ``default_layer``).

The shipped model: ``--out DIR --steps 2400 --batch 128 --negatives 0.5`` (all other
options at their defaults), 75 min wall on a 2-core machine shared with other jobs. On the
same machine idle, the first 200 steps took 216 s (1.08 s per step, the same losses as the
shipped run's history): about 43 min for 2400 steps, plus about 1 min of evaluations. On
2026-11-30 another machine of the same kind, about 2x slower that day in every benchmark,
ran 2.17 s per step (``--time-budget 300 --eval-every 100000``: 137 steps in 300 s), which
would be 87 min for 2400 steps: the 45-minute budget holds on the faster machine only.

Training: symmetric InfoNCE over a batch of fresh scenes (``SceneGenerator(seed)``,
captions naming all or a subset of the objects). Captions that also fit another image
of the batch are left out of that image's negatives (and vice versa), and each image
gets hard-negative captions (one object's colour or shape word swapped) as extra
negatives, so that the text has to ground each named object, with its attributes bound.

``--family siglip2`` trains a ``transformers.Siglip2Model`` of the same size on the same
scene stream, captions, hard negatives and tokenizer, with SigLIP's sigmoid loss instead
(every caption-image pair an independent binary decision, ``-log sigmoid(z * (t x.y + b))``
summed over pairs and divided by the number of images; learnable ``t`` and ``b`` initialized
to ``log 10`` and the log prior odds of a positive pair, ``-log(texts - 1)``, -5.25 for a
batch of 128 with 64 hard negatives: Zhai et al. 2023's ``-10`` is that prior for their
batches of 32k, see :func:`siglip_bias_init`). The pairs that are neither positive nor
negative are left out of the sum, as they are left out of InfoNCE's negatives. Ship it
into ``captum_bilinear/zoo/demo_siglip2/`` and run ``python -m
captum_bilinear.zoo.measure_layers --model demo-siglip2 --write``. See
:mod:`captum_bilinear.zoo.siglip2` for its inputs.
"""

import argparse
import json
import math
import os
import platform
import queue
import shutil
import threading
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from captum_bilinear.zoo.demo import (
    DEMO_MODEL_DIR,
    HELD_OUT_SEED,
    SETTINGS_FILE,
    demo_config,
    images_to_pixel_values,
    make_image_processor,
    retrieval_top1,
)
from captum_bilinear.zoo.scenes import COLOURS, SHAPES, SIZES, Scene, SceneGenerator, caption_fits, hard_negative
from captum_bilinear.zoo.tokenizer import write_tokenizer_files

_COMBOS = [(c, s, z) for c in COLOURS for s in SHAPES for z in SIZES]
_COMBO_INDEX = {combo: i for i, combo in enumerate(_COMBOS)}


def _description_mask(words: Sequence[str]) -> np.ndarray:
    mask = np.zeros(len(_COMBOS), dtype=bool)
    for i, (c, s, z) in enumerate(_COMBOS):
        mask[i] = all(w in (c, s, z) for w in words)
    return mask


_MASK_CACHE: Dict[Tuple[str, ...], np.ndarray] = {}


def _cached_mask(words: Tuple[str, ...]) -> np.ndarray:
    if words not in _MASK_CACHE:
        _MASK_CACHE[words] = _description_mask(words)
    return _MASK_CACHE[words]


def fit_matrix(captions: Sequence[Scene], images: Sequence[Scene]) -> np.ndarray:
    """``M[t, j] = caption_fits(captions[t], images[j])``, fast (vectorized pre-check,
    exact check only where a relation is stated)."""
    occupancy = np.zeros((len(_COMBOS), len(images)), dtype=bool)
    counts = np.array([len(s.all_objects) for s in images])
    for j, scene in enumerate(images):
        for o in scene.all_objects:
            occupancy[_COMBO_INDEX[(o.colour, o.shape, o.size)], j] = True
    fits = np.ones((len(captions), len(images)), dtype=bool)
    for t, scene in enumerate(captions):
        union = np.zeros(len(_COMBOS), dtype=bool)
        for named in scene.objects:
            mask = _cached_mask(named.words)
            union |= mask
            fits[t] &= (mask[:, None] & occupancy).any(axis=0)
        if scene.mode == "full":
            fits[t] &= counts == len(scene.objects)
            fits[t] &= ~(occupancy & ~union[:, None]).any(axis=0)
        if scene.relation is not None:
            for image_index in np.nonzero(fits[t])[0]:
                fits[t, image_index] = caption_fits(scene, images[int(image_index)])
    return fits


def make_batch(generator: SceneGenerator, step: int, batch: int, negatives: float, tokenizer, family: str = "clip"):
    """Scenes ``step * batch ...`` of the stream, their captions, hard negatives for a
    share ``negatives`` of them, and the fit matrix of all captions against all images
    (``family="siglip2"``: captions left-padded with position ids, NaFlex patches)."""
    scenes = generator.scenes(batch, start=step * batch)
    rng = np.random.default_rng([generator.seed, step, 0x6E])
    n_neg = int(round(negatives * batch))
    chosen = rng.choice(batch, size=n_neg, replace=False) if n_neg else np.zeros(0, dtype=np.int64)
    negative_scenes = [hard_negative(scenes[i], seed=step * batch + int(i)) for i in chosen]
    text_scenes = scenes + negative_scenes
    fits = torch.from_numpy(fit_matrix(text_scenes, scenes))
    fits[torch.arange(batch), torch.arange(batch)] = False  # the positives themselves
    if family == "siglip2":
        from captum_bilinear.zoo.siglip2 import encode_captions, images_to_patches

        values, mask, shapes = images_to_patches([s.image for s in scenes])
        return dict(
            encode_captions(tokenizer, [s.caption for s in text_scenes]),
            pixel_values=values,
            pixel_attention_mask=mask,
            spatial_shapes=shapes,
            ignore=fits,
        )
    text = tokenizer([s.caption for s in text_scenes], padding=True, return_tensors="pt")
    return {
        "input_ids": text["input_ids"],
        "attention_mask": text["attention_mask"],
        "pixel_values": images_to_pixel_values([s.image for s in scenes]),
        "ignore": fits,  # (texts, images): pairs that are neither positive nor negative
    }


def contrastive_loss(text: torch.Tensor, image: torch.Tensor, logit_scale: torch.Tensor, ignore: torch.Tensor):
    """Symmetric InfoNCE; rows ``0..B-1`` of ``text`` are the positives of the ``B``
    images, further rows extra negatives; ``ignore[t, j]`` drops pair ``(t, j)``."""
    batch = image.shape[0]
    text = F.normalize(text, dim=-1)
    image = F.normalize(image, dim=-1)
    logits = logit_scale.exp() * text @ image.T  # (texts, images)
    logits = logits.masked_fill(ignore, float("-inf"))
    target = torch.arange(batch)
    image_to_text = F.cross_entropy(logits.T, target)
    text_to_image = F.cross_entropy(logits[:batch], target)
    return (image_to_text + text_to_image) / 2, logits


def sigmoid_loss(
    text: torch.Tensor, image: torch.Tensor, logit_scale: torch.Tensor, logit_bias: torch.Tensor, ignore: torch.Tensor
):
    """SigLIP's sigmoid loss; rows ``0..B-1`` of ``text`` are the positives of the ``B``
    images, further rows extra negatives; ``ignore[t, j]`` drops pair ``(t, j)``. The sum
    over pairs is divided by ``B``, as in Zhai et al. 2023 (Algorithm 1)."""
    batch = image.shape[0]
    text = F.normalize(text, dim=-1)
    image = F.normalize(image, dim=-1)
    logits = logit_scale.exp() * text @ image.T + logit_bias  # (texts, images)
    labels = -torch.ones_like(logits)
    labels[torch.arange(batch), torch.arange(batch)] = 1.0
    per_pair = -F.logsigmoid(labels * logits).masked_fill(ignore, 0.0)
    return per_pair.sum() / batch, logits


def _prefetch(make, steps: range, depth: int = 2):
    """Build batches in a background thread."""
    q: "queue.Queue" = queue.Queue(maxsize=depth)

    def work():
        for step in steps:
            q.put(make(step))
        q.put(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    while True:
        item = q.get()
        if item is None:
            return
        yield item


LOSS_DESCRIPTION = {
    "clip": "symmetric InfoNCE, learnable temperature (max 100); captions fitting another image are not negatives",
    "siglip2": "SigLIP sigmoid loss (sum over caption-image pairs / images), learnable scale and bias initialized to "
    "log 10 and -log(texts per image - 1); caption-image pairs that fit but are not the positive are left out",
}

TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json")


def prepare_tokenizer(source: str, out: str) -> str:
    """Put the tokenizer files into ``out``: ``"shipped"`` copies the demo model's (so a
    retrained model keeps its token ids; falls back to ``"new"`` if there are none),
    ``"new"`` builds them from the scene vocabulary, anything else is a folder to copy
    from. Returns what was used."""
    if source == "shipped":
        if os.path.isfile(os.path.join(DEMO_MODEL_DIR, "vocab.json")):
            source = DEMO_MODEL_DIR
        else:
            source = "new"
    if source == "new":
        write_tokenizer_files(out)
        return "new"
    for name in TOKENIZER_FILES:
        src = os.path.join(source, name)
        dst = os.path.join(out, name)
        if os.path.isfile(src) and os.path.abspath(src) != os.path.abspath(dst):
            shutil.copyfile(src, dst)
    return os.path.abspath(source)


def siglip_bias_init(batch: int, negatives: float) -> float:
    """SigLIP's bias initialization for this batch: the log prior odds of a positive
    pair, ``-log(texts - 1)`` with ``texts`` the captions an image is scored against.

    Zhai et al. 2023 initialize ``b = -10`` for batches of 32k, where it is about that
    prior (``-log 32767 = -10.4``); with 128 images and 64 hard negatives it is -5.25.
    Adam moves a scalar by about the learning rate per step, so a bias 5 too low would
    take thousands of steps to correct: the short demo run starts at the prior instead.

    Example:
        >>> round(siglip_bias_init(128, 0.5), 2)
        -5.25
    """
    texts = batch + int(round(negatives * batch))
    return -math.log(max(texts - 1, 1))


def _build_model(args: argparse.Namespace, tokenizer):
    """The untrained model and its image processor for ``args.family``."""
    ids = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        layers=args.layers,
        width=args.width,
        heads=args.heads,
        image_size=args.image_size,
        patch_size=args.patch_size,
        max_length=tokenizer.model_max_length,
    )
    if args.family == "siglip2":
        from transformers import Siglip2Model

        from captum_bilinear.zoo.siglip2 import make_siglip2_image_processor, siglip2_demo_config

        model = Siglip2Model(siglip2_demo_config(**ids))
        with torch.no_grad():  # SigLIP's initialization (HF's post_init zeroes both)
            model.logit_scale.fill_(math.log(10.0))
            model.logit_bias.fill_(siglip_bias_init(args.batch, args.negatives))
        return model, make_siglip2_image_processor(args.image_size, args.patch_size)
    from transformers import CLIPModel

    return CLIPModel(demo_config(projection_dim=args.projection_dim, **ids)), make_image_processor(args.image_size)


def _step_loss(model, batch: Dict[str, torch.Tensor], family: str):
    """The training loss of one batch."""
    if family == "siglip2":
        text = model.get_text_features(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
        )
        image = model.get_image_features(
            pixel_values=batch["pixel_values"],
            pixel_attention_mask=batch["pixel_attention_mask"],
            spatial_shapes=batch["spatial_shapes"],
        )
        text = getattr(text, "pooler_output", text)
        image = getattr(image, "pooler_output", image)
        return sigmoid_loss(text, image, model.logit_scale, model.logit_bias, batch["ignore"])[0]
    text = model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    image = model.get_image_features(pixel_values=batch["pixel_values"])
    text = getattr(text, "pooler_output", text)
    image = getattr(image, "pooler_output", image)
    return contrastive_loss(text, image, model.logit_scale, batch["ignore"])[0]


def _retrieval(model, tokenizer, processor, family: str, **options) -> float:
    if family == "siglip2":
        from captum_bilinear.zoo.siglip2 import siglip2_retrieval_top1

        return siglip2_retrieval_top1(model, tokenizer, **options)
    return retrieval_top1(model, tokenizer, processor, **options)


def train(args: argparse.Namespace) -> Dict:
    from transformers import CLIPTokenizerFast  # type: ignore[attr-defined]  # a lazy alias in transformers 5, absent from its type stubs

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    tokenizer_source = prepare_tokenizer(args.tokenizer, args.out)
    tokenizer = CLIPTokenizerFast.from_pretrained(args.out)
    model, processor = _build_model(args, tokenizer)
    processor.save_pretrained(args.out)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    generator = SceneGenerator(args.seed, mode=args.mode, image_size=args.image_size)
    history: List[Dict] = []
    start = time.time()
    cpu_start = time.process_time()
    losses: List[float] = []
    batches = _prefetch(
        lambda s: make_batch(generator, s, args.batch, args.negatives, tokenizer, args.family), range(args.steps)
    )
    for step, batch in enumerate(batches):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        loss = _step_loss(model, batch, args.family)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        if args.family == "clip":
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            entry = {
                "step": step + 1,
                "loss": float(np.mean(losses[-args.log_every :])),
                "lr": lr_at(step),
                "logit_scale": float(model.logit_scale.detach().exp()),
                "elapsed_s": round(time.time() - start, 1),
            }
            if args.family == "siglip2":
                entry["logit_bias"] = float(model.logit_bias.detach())
            if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
                entry["retrieval_top1_32"] = _retrieval(
                    model, tokenizer, processor, args.family, n_scenes=32, seed=HELD_OUT_SEED + 1
                )
                model.save_pretrained(args.out)  # checkpoint
                model.train()
            history.append(entry)
            print(json.dumps(entry), flush=True)
        if args.time_budget and time.time() - start > args.time_budget:
            print(f"time budget of {args.time_budget} s reached after {step + 1} steps", flush=True)
            break
    steps_done = step + 1
    train_seconds = time.time() - start
    cpu_seconds = time.process_time() - cpu_start
    model.eval()

    # final held-out retrieval: galleries of 32 full captions from the held-out stream
    top1_first = _retrieval(model, tokenizer, processor, args.family, n_scenes=32, seed=HELD_OUT_SEED)
    top1_mean = _retrieval(model, tokenizer, processor, args.family, n_scenes=32, seed=HELD_OUT_SEED, n_sets=8)
    model.save_pretrained(args.out)
    import transformers

    settings = {
        "command": "python -m captum_bilinear.zoo.train " + " ".join(args.argv),
        "seed": args.seed,
        "steps": steps_done,
        "steps_planned": args.steps,
        "batch": args.batch,
        "hard_negatives_per_scene": args.negatives,
        "caption_mode": args.mode,
        "optimizer": {
            "name": "AdamW",
            "lr": args.lr,
            "betas": [0.9, 0.98],
            "eps": 1e-6,
            "weight_decay": args.weight_decay,
        },
        "schedule": {"warmup_steps": args.warmup, "decay": "cosine", "min_lr_ratio": args.min_lr_ratio},
        "grad_clip": args.clip,
        "loss": LOSS_DESCRIPTION[args.family],
        "architecture": {
            "class": "Siglip2Model" if args.family == "siglip2" else "CLIPModel",
            "layers": args.layers,
            "width": args.width,
            "heads": args.heads,
            "mlp": 4 * args.width,
            "projection_dim": args.width if args.family == "siglip2" else args.projection_dim,
            "image_size": args.image_size,
            "patch_size": args.patch_size,
            "image_positions": (args.family == "clip") + (args.image_size // args.patch_size) ** 2,
            "max_text_length": tokenizer.model_max_length,
            "vocab_size": len(tokenizer),
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "tokenizer": tokenizer_source if tokenizer_source == "new" else "copied from " + tokenizer_source,
        "threads": args.threads,
        "train_seconds": round(train_seconds, 1),
        "train_minutes": round(train_seconds / 60, 2),
        "process_cpu_seconds": round(cpu_seconds, 1),
        "idle_machine_minutes_estimate": round(cpu_seconds / args.threads / 60, 2),
        "final_loss": float(np.mean(losses[-args.log_every :])),
        "final_logit_scale": float(model.logit_scale.detach().exp()),
        **({"final_logit_bias": float(model.logit_bias.detach())} if args.family == "siglip2" else {}),
        "held_out_seed": HELD_OUT_SEED,
        "retrieval_top1_32": top1_first,
        "retrieval_top1_32_mean_of_8": top1_mean,
        "history": history,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
        "machine": {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()},
    }
    settings_path = os.path.join(args.out, SETTINGS_FILE)
    if os.path.exists(settings_path):  # keep measurements added later (e.g. default_layer)
        with open(settings_path, encoding="utf-8") as f:
            previous = json.load(f)
        for key in ("default_layer", "pointing_game"):
            if key in previous:
                settings[key] = previous[key]
    with open(settings_path, "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=1)
        f.write("\n")
    print(
        json.dumps(
            {k: settings[k] for k in ("steps", "train_minutes", "retrieval_top1_32", "retrieval_top1_32_mean_of_8")}
        )
    )
    return settings


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--family", default="clip", choices=["clip", "siglip2"], help="CLIPModel + InfoNCE, or Siglip2Model + sigmoid loss"
    )
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--min-lr-ratio", type=float, default=0.02)
    parser.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    parser.add_argument("--negatives", type=float, default=0.5, help="hard-negative captions per scene (0..1)")
    parser.add_argument("--mode", default="mixed", choices=["mixed", "full", "subset"])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--projection-dim", type=int, default=128, help="CLIP only (SigLIP-2's is --width)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tokenizer",
        default="shipped",
        help="'shipped' (reuse the demo model's tokenizer files), 'new' (build them) or a folder to copy from",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--eval-every", type=int, default=400)
    parser.add_argument("--time-budget", type=float, default=0, help="stop after this many seconds (0: never)")
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def main(argv=None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
