"""Figures of a comparison: the same pairs under each model.

Each figure is one caption-image pair: a row per (model, method), a column per named
object, each cell the span's image map over the image as that model saw it, the object's
box outlined and its PGE in the title. The maps are recomputed exactly as the run
computed them (same example, same settings, same seed), so the PGE printed is the one in
that run's records. One colour scale per row: rows of different models are not on one
scale (their similarities differ), the sign and the place are what to compare.
"""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt  # noqa: E402

from captum_bilinear.evaluation.records import complete_blocks  # noqa: E402

FIGURES = "figures"
#: Row labels of the methods (the papers' names).
SHORT_NAMES = {"BilinearIntegratedInteractions": "BII", "WeightedBanzhafInteractions": "FIxLIP",
               "InteractionCAM": "InteractionCAM", "InteractionLIME": "InteractionLIME"}


def chosen_examples(blocks: Dict[str, List[Dict[str, Any]]], count: int) -> List[int]:
    """The first ``count`` example indices (in the dataset's order) whose pair record has
    two or more objects, then those with one (no choice by result).

    Example:
        >>> blocks = {"b": [{"kind": "pair", "index": 1, "objects": 1}], "a": [{"kind": "pair", "index": 0, "objects": 2}],
        ...           "c": [{"kind": "pair", "index": 2, "objects": 3}]}
        >>> chosen_examples(blocks, 2), chosen_examples(blocks, 3)
        ([0, 2], [0, 2, 1])
    """
    pairs = sorted((r for records in blocks.values() for r in records if r.get("kind") == "pair"),
                   key=lambda r: r["index"])
    several = [r["index"] for r in pairs if r.get("objects", 0) >= 2]
    single = [r["index"] for r in pairs if r.get("objects", 0) == 1]
    return (several + single)[:count]


def pair_maps(bundle: Any, example: Any, config: Any, methods: Sequence[str]) -> Tuple[Any, List[Any], Dict[str, Any]]:
    """``(prepared example, its objects, {method: [(span map, PGE) per object]})`` of one
    example under one model, computed as :func:`~captum_bilinear.evaluation.run.evaluate_example` does."""
    from captum_bilinear.datasets.prepare import move_to, prepare_example
    from captum_bilinear.evaluation.methods import EVALUATION_METHODS, RunSettings
    from captum_bilinear.evaluation.run import example_seed, model_image, pair_inputs
    from captum_bilinear.evaluation.scoring import Geometry, image_map
    from captum_bilinear.first_order import LIG_STEPS_WITH_AUTO
    from captum_bilinear.metrics import pointing_game

    prepared = move_to(prepare_example(example, bundle.tokenizer, bundle.image_processor, bundle.patch_size,
                                       config.fit, config.min_box_patches), bundle.device)
    settings = RunSettings(seed=example_seed(config.seed, example.index), n_steps=config.n_steps,
                           tolerance=config.tolerance,
                           lig_n_steps=config.n_steps if isinstance(config.n_steps, int) else LIG_STEPS_WITH_AUTO)
    bundle, pixel_values, image_extra = model_image(bundle, prepared.pixel_values)
    pair = pair_inputs(bundle, prepared.input_ids, prepared.attention_mask, pixel_values, prepared.text_players,
                       image_extra)
    geometry = Geometry(prepared.image_size, bundle.grid, bundle.has_cls)
    maps: Dict[str, Any] = {}
    for name in methods:
        method = EVALUATION_METHODS[name]
        terms = method.explain(bundle, pair, settings).to("cpu")
        maps[name] = []
        for obj in prepared.objects:
            span_map = image_map(terms, method.order, obj.span, geometry)
            maps[name].append((span_map, pointing_game(span_map, obj.box, geometry.image_size).energy))
    return prepared, prepared.objects, maps


def draw_pair(rows: Sequence[Tuple[str, Any, List[Any], List[Tuple[Any, float]]]], caption: str, path: str) -> None:
    """One pair's figure: ``rows`` of ``(label, display image, objects, [(map, PGE)])``."""
    from captum_bilinear.visualization import common_scale, image_heatmap

    columns = max(len(objects) for _, _, objects, _ in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.3 * columns + 0.6, 2.3 * len(rows) + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (label, display, objects, maps) in enumerate(rows):
        scale = common_scale(*[span_map for span_map, _ in maps]) or 1.0
        for column, (obj, (span_map, energy)) in enumerate(zip(objects, maps)):
            ax = axes[row, column]
            ax.axis("on")
            image_heatmap(display, span_map, ax=ax, scale=scale, box=obj.box,
                          title=f"\"{obj.phrase}\"  PGE {energy:.2f}")
            ax.title.set_fontsize(8)
            if column == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"\"{caption}\"\nred raises, blue lowers the similarity; box in green; one colour scale per row",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_pair_figures(models: Dict[str, Optional[str]], runs: Dict[str, str], out: str, methods: Sequence[str],
                       count: int, options: Dict[str, Any]) -> List[str]:
    """Draws ``count`` pairs (:func:`chosen_examples` of the first run) under every model
    of ``models`` (``{label: model}``, runs in ``runs``) into ``out/figures/`` with those
    of ``methods`` each run evaluated (none of them: its first interaction method);
    returns the paths relative to ``out``."""
    import json

    from captum_bilinear.evaluation.bundle import load_bundle
    from captum_bilinear.evaluation.methods import EVALUATION_METHODS
    from captum_bilinear.evaluation.run import EvaluationConfig, load_dataset

    reference = next(iter(runs))
    with open(os.path.join(runs[reference], "run.json"), encoding="utf-8") as handle:
        settings = json.load(handle)["config"]
    indices = chosen_examples(complete_blocks(runs[reference]), count)
    if not indices:
        return []
    config = EvaluationConfig(**{k: v for k, v in settings.items() if k not in ("model", "layer", "methods")})
    evaluated = list(settings["methods"])
    methods = [name for name in methods if name in evaluated] or [
        name for name in evaluated if EVALUATION_METHODS[name].order == 2][:1]
    dataset = load_dataset(config)
    examples = {example.index: example for example in dataset.examples}
    rows: Dict[int, List[Any]] = {index: [] for index in indices}
    captions: Dict[int, str] = {}
    for label, model in models.items():
        with open(os.path.join(runs[label], "results.json"), encoding="utf-8") as handle:
            entry = json.load(handle)["model"]
        bundle = load_bundle(model, entry["layer"], options.get("device"))
        usable = [m for m in methods if m not in entry.get("skipped_methods", {})]
        for index in indices:
            prepared, objects, maps = pair_maps(bundle, examples[index], config, usable)
            captions[index] = prepared.example.caption
            for name in usable:
                rows[index].append((f"{label}\n{SHORT_NAMES.get(name, name)}", prepared.display, objects, maps[name]))
    os.makedirs(os.path.join(out, FIGURES), exist_ok=True)
    paths = []
    for index in indices:
        if not any(objects for _, _, objects, _ in rows[index]):
            continue
        path = os.path.join(FIGURES, f"pair-{index:05d}.png")
        draw_pair(rows[index], captions[index], os.path.join(out, path))
        paths.append(path)
    return paths
