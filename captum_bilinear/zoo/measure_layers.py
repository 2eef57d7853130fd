"""Pointing game of BilinearIntegratedInteractions per layer of the demo model.

Usage::

    python -m captum_bilinear.zoo.measure_layers [--model DIR] [--scenes 40] [--n-steps 16] [--write]
    python -m captum_bilinear.zoo.measure_layers --model demo-siglip2 ...   # the SigLIP-2 demo model

For every named object of held-out scenes, the interactions of the object's caption
span are summed into a map over the image patches (CLS dropped), at the embeddings
layers (``"embeddings"``) and at every encoder layer (the SigLIP-2 demo model: its NaFlex
patches, no CLS, each caption alone). PGA: the map's top
patch overlaps the object's box; PGE: the share of the map's positive mass (per pixel)
inside the box -- :func:`captum_bilinear.metrics.pointing_game`. With ``--write`` the per-layer table and the best layer (highest PGA, then PGE) are
stored in the model's ``training_settings.json`` as ``pointing_game`` and ``default_layer`` (an
encoder layer index, or ``"embeddings"``).
"""

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Sequence, Union

import numpy as np
import torch

from captum_bilinear.zoo.demo import (
    DEMO_MODEL_DIR,
    HELD_OUT_SEED,
    SETTINGS_FILE,
    default_layers,
    load_demo_model,
    scene_inputs,
)
from captum_bilinear.zoo.scenes import Scene, SceneGenerator

#: Held-out scenes of the measurement (training: seed 0; retrieval: HELD_OUT_SEED).
MEASURE_SEED = HELD_OUT_SEED + 2

Layer = Union[int, str]


def is_siglip2(model) -> bool:
    """Whether ``model`` is a ``Siglip2Model`` (NaFlex inputs, no CLS)."""
    return type(model).__name__ == "Siglip2Model"


def image_side(model) -> int:
    """The demo scenes' side in pixels for ``model`` (SigLIP-2: its position grid's)."""
    vision = model.config.vision_config
    if is_siglip2(model):
        return int(round(vision.num_patches ** 0.5)) * vision.patch_size
    return vision.image_size


def _attribution_inputs(model, scene: Scene, tokenizer, processor):
    """``((input_ids, pixel_values), additional_forward_args)`` of one scene."""
    if is_siglip2(model):
        from captum_bilinear.zoo.siglip2 import siglip2_scene_inputs

        batch = siglip2_scene_inputs([scene], tokenizer, model.config.vision_config.patch_size)
        return ((batch["input_ids"], batch["pixel_values"]),
                ((batch["attention_mask"],), (batch["pixel_attention_mask"], batch["spatial_shapes"])))
    batch = scene_inputs(scene, tokenizer, processor)
    return (batch["input_ids"], batch["pixel_values"]), ((batch["attention_mask"],), None)


def load_measured_model(model: str):
    """``(model, tokenizer, processor, settings folder)`` of ``--model``: a folder, or
    ``demo-clip`` / ``demo-siglip2``."""
    from captum_bilinear.zoo.siglip2 import DEMO_SIGLIP2_DIR, load_demo_siglip2

    if model == "demo-siglip2":
        model = DEMO_SIGLIP2_DIR
    elif model == "demo-clip":
        model = DEMO_MODEL_DIR
    with open(os.path.join(model, "config.json"), encoding="utf-8") as f:
        model_type = json.load(f).get("model_type")
    loaded = load_demo_siglip2(model) if model_type == "siglip2" else load_demo_model(model)
    return (*loaded, model)


def all_layers(model) -> List[Layer]:
    """``["embeddings", 0, 1, ...]``: every layer the measurement tries.

    Example:
        >>> model, _, _ = load_demo_model()
        >>> all_layers(model)
        ['embeddings', 0, 1, 2, 3, 4, 5]
    """
    return ["embeddings", *range(model.config.vision_config.num_hidden_layers)]


def overlap_share(box: Sequence[int], image_size: int, patch_size: int) -> float:
    """Share of the patch grid that ``box`` overlaps: the chance level of PGA (a random
    top patch overlapping the box).

    Example:
        >>> overlap_share((0, 0, 10, 8), image_size=32, patch_size=8)
        0.125
    """
    grid = image_size // patch_size
    x0, y0, x1, y1 = box
    columns = sum(1 for i in range(grid) if i * patch_size < x1 and (i + 1) * patch_size > x0)
    rows = sum(1 for i in range(grid) if i * patch_size < y1 and (i + 1) * patch_size > y0)
    return rows * columns / float(grid * grid)


def measure(
    model,
    tokenizer,
    processor,
    scenes: Sequence[Scene],
    layers: Sequence[Layer],
    n_steps: int = 16,
) -> Dict[Layer, Dict[str, float]]:
    """PGA / PGE of BilinearIntegratedInteractions at each layer (an encoder layer index
    or ``"embeddings"``).

    Returns:
        ``{layer: {"pga", "pge", "objects", "rel_delta", "seconds"}}`` where ``rel_delta``
        is the median ``|delta| / |sum A|`` (quadrature error).
    """
    from captum_bilinear import BilinearIntegratedInteractions
    from captum_bilinear.metrics import pointing_game
    from captum_bilinear.selection import span_image_map

    image_size = image_side(model)
    grid = image_size // model.config.vision_config.patch_size
    has_cls = not is_siglip2(model)
    results = {}
    inputs = [_attribution_inputs(model, scene, tokenizer, processor) for scene in scenes]
    for k in layers:
        layer = default_layers(model, k)
        method = BilinearIntegratedInteractions(model, layer)
        hits, energies, rel = [], [], []
        start = time.time()
        for scene, (pair, extra) in zip(scenes, inputs):
            A, delta = method.attribute(pair, additional_forward_args=extra, n_steps=n_steps,
                                        return_convergence_delta=True)
            A = A[0].detach()
            rel.append(abs(float(delta[0])) / max(abs(float(A.sum())), 1e-12))
            for obj in scene.objects:
                assert obj.span is not None  # scene.objects are the ones the caption names
                start_token, stop_token = obj.span
                patch_map = span_image_map(A, (start_token, stop_token), (grid, grid), has_cls)
                result = pointing_game(patch_map, obj.box, (image_size, image_size))
                hits.append(result.hit)
                energies.append(result.energy)
        results[k] = {
            "pga": float(np.mean(hits)),
            "pge": float(np.mean(energies)),
            "objects": len(hits),
            "rel_delta": float(np.median(rel)),
            "seconds": round(time.time() - start, 1),
        }
    return results


def chance_level(scenes: Sequence[Scene], image_size: int, patch_size: int) -> Dict[str, float]:
    """Expected PGA and PGE of a uniformly random map: the mean share of patches a box
    overlaps, and the mean share of the image a box covers."""
    objects = [o for s in scenes for o in s.objects]
    pga = [overlap_share(o.box, image_size, patch_size) for o in objects]
    pge = [(o.box[2] - o.box[0]) * (o.box[3] - o.box[1]) / float(image_size * image_size) for o in objects]
    return {"pga": float(np.mean(pga)), "pge": float(np.mean(pge))}


def choose_layer(results: Dict[Layer, Dict[str, float]]) -> Layer:
    """The layer with the highest PGA (ties: highest PGE)."""
    return max(results, key=lambda k: (round(results[k]["pga"], 6), results[k]["pge"]))


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default=DEMO_MODEL_DIR, help="model folder, demo-clip or demo-siglip2 (default: the demo CLIP)"
    )
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--mode", default="full", choices=["full", "subset", "mixed"])
    parser.add_argument("--n-steps", type=int, default=16)
    parser.add_argument("--seed", type=int, default=MEASURE_SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--write", action="store_true", help="store the table and default_layer in training_settings.json"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model, tokenizer, processor, folder = load_measured_model(args.model)
    vision = model.config.vision_config
    scenes = SceneGenerator(args.seed, mode=args.mode, image_size=image_side(model)).scenes(args.scenes)
    layers = all_layers(model)
    results = measure(model, tokenizer, processor, scenes, layers, n_steps=args.n_steps)
    chance = chance_level(scenes, image_side(model), vision.patch_size)
    best = choose_layer(results)

    print(f"{len(scenes)} scenes (seed {args.seed}, mode {args.mode}), n_steps={args.n_steps}")
    print(f"{'layer':>10} {'PGA':>6} {'PGE':>6} {'objects':>7} {'|delta|/|sumA|':>14} {'seconds':>7}")
    for k, r in results.items():
        mark = "  <- default" if k == best else ""
        print(
            f"{str(k):>10} {r['pga']:6.3f} {r['pge']:6.3f} {r['objects']:>7} {r['rel_delta']:14.2e} {r['seconds']:7.1f}{mark}"
        )
    print(f"{'chance':>10} {chance['pga']:6.3f} {chance['pge']:6.3f}")

    report = {
        "method": "BilinearIntegratedInteractions",
        "n_steps": args.n_steps,
        "scenes": args.scenes,
        "seed": args.seed,
        "mode": args.mode,
        "command": "python -m captum_bilinear.zoo.measure_layers " + " ".join(sys.argv[1:] if argv is None else argv),
        "definition": "captum_bilinear.metrics.pointing_game (top patch overlaps the box; positive mass per pixel)",
        "per_layer": {str(k): v for k, v in results.items()},
        "chance": chance,
    }
    if args.write:
        path = os.path.join(folder, SETTINGS_FILE)
        with open(path, encoding="utf-8") as f:
            settings = json.load(f)
        settings["default_layer"] = best
        settings["pointing_game"] = report
        with open(path, "w", encoding="utf-8") as f:
            json.dump(settings, f, indent=1)
            f.write("\n")
        print(f"wrote default_layer={best} to {path}")
    return {"default_layer": best, **report}


if __name__ == "__main__":
    main()
