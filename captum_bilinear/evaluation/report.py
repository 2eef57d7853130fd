"""``report.md`` and the plots of an evaluation run."""

import math
import os
from typing import Any, Callable, Dict, List, Optional

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from captum_bilinear.evaluation.scoring import CURVE_GRID  # noqa: E402
from captum_bilinear.visualization import outline_box  # noqa: E402

#: Columns of the report's table: (key in results.json, header, better).
COLUMNS = (
    ("PGA", "PGA", "higher"),
    ("mPGE", "mPGE", "higher"),
    ("CID", "CID", "lower"),
    ("CII", "CII", "higher"),
    ("CTD", "CTD", "lower"),
    ("CTI", "CTI", "higher"),
    ("p_faithfulness", "p-faithfulness (Spearman)", "higher"),
    ("seconds_per_pair", "s / pair", "lower"),
)
#: The second table: the analyses of exCLIP §4.3 per method.
ANALYSIS_COLUMNS = (
    ("median_PGE", "median PGE", "higher"),
    ("share_PGE_above_0.8", "PGE > 0.8", "higher"),
    ("own_positive", "own box > 0", "higher"),
    ("cross_negative", "other boxes < 0", "higher"),
    ("own_above_cross", "own > others", "higher"),
    ("hard_negative_delta_S", "hard negative δS", "lower"),
    ("hard_negative_delta_A", "hard negative δA", "lower"),
    ("hard_negative_share_A_lower", "δA < 0", "higher"),
)
#: The per-layer table's columns.
LAYER_COLUMNS = (
    ("PGA", "PGA"), ("mPGE", "mPGE"), ("p_faithfulness", "p-faithfulness"),
    ("completeness_error", "completeness error (median)"), ("seconds_per_pair", "s / pair"),
)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and value != 0 and abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(results: Dict[str, Any], columns: Any) -> str:
    header = "| method | " + " | ".join(f"{title} ({better})" for _, title, better in columns) + " |"
    rule = "| --- " * (len(columns) + 1) + "|"
    rows = [f"| {name} | " + " | ".join(_cell(values.get(key)) for key, _, _ in columns) + " |"
            for name, values in results["methods"].items()]
    return "\n".join([header, rule, *rows])


def results_table(results: Dict[str, Any]) -> str:
    """The methods x metrics table of ``results.json`` as markdown.

    Example:
        >>> print(results_table({"methods": {"BII": {"PGA": 0.5, "mPGE": float("nan")}}}).splitlines()[-1])
        | BII | 0.500 | n/a | n/a | n/a | n/a | n/a | n/a | n/a |
    """
    return _table(results, COLUMNS)


def analysis_table(results: Dict[str, Any]) -> str:
    """The per-method analyses (median PGE, share > 0.8, discrimination, hard negatives).

    Example:
        >>> print(analysis_table({"methods": {"BII": {"median_PGE": 0.25}}}).splitlines()[-1])
        | BII | 0.250 | n/a | n/a | n/a | n/a | n/a | n/a | n/a |
    """
    return _table(results, ANALYSIS_COLUMNS)


def per_layer_table(per_layer: Dict[str, Any]) -> str:
    """Each gradient method at each layer: rows method x layer.

    Example:
        >>> table = per_layer_table({"layers": {"embeddings": {"BII": {"PGA": 0.75}}}, "methods": ["BII"]})
        >>> table.splitlines()[-1]
        '| BII | embeddings | 0.750 | n/a | n/a | n/a | n/a |'
    """
    header = "| method | layer | " + " | ".join(title for _, title in LAYER_COLUMNS) + " |"
    rule = "| --- " * (len(LAYER_COLUMNS) + 2) + "|"
    rows = []
    for method in per_layer["methods"]:
        for layer, methods in per_layer["layers"].items():
            values = methods.get(method, {})
            rows.append(f"| {method} | {layer} | " + " | ".join(_cell(values.get(k)) for k, _ in LAYER_COLUMNS) + " |")
    return "\n".join([header, rule, *rows])


def _plot_completeness(curves: Dict[str, Dict[str, List[float]]], path: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for method, curve in curves.items():
        ax.plot(curve["n_steps"], curve["median"], marker="o", label=method)
        ax.fill_between(curve["n_steps"], curve["q25"], curve["q75"], alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("n_steps")
    ax.set_ylabel("|delta| / |four-term identity|")
    ax.set_title("BII completeness error (median, quartiles)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_curves(curves: Dict[str, Dict[str, List[float]]], path: str) -> None:
    keys = ("CID", "CII", "CTD", "CTI")
    titles = {"CID": "image deletion (caption fixed)", "CII": "image insertion", "CTD": "text deletion (image fixed)",
              "CTI": "text insertion"}
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharey=False)
    for ax, key in zip(axes, keys):
        for name, method_curves in curves.items():
            if key in method_curves:
                ax.plot(CURVE_GRID, method_curves[key], label=name)
        ax.set_title(f"{key}: {titles[key]}", fontsize=9)
        ax.set_xlabel("fraction removed" if key.endswith("D") else "fraction inserted")
    axes[0].set_ylabel("cosine similarity")
    axes[0].legend(fontsize=7, loc="best")  # the image panels have every method
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_energies(energies: Dict[str, List[float]], path: str) -> None:
    names = [name for name, values in energies.items() if values]
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(names)), 3.6))
    if names:
        ax.boxplot([energies[name] for name in names], showmeans=True)
        ax.set_xticks(range(1, len(names) + 1))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("PGE (share of positive mass in the box)")
    ax.set_title("pointing-game energy per named object", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_gallery(failures: List[Dict[str, Any]], display: Callable[[str], np.ndarray], path: str,
                  method: str, columns: int = 3, most: int = 12) -> int:
    """A contact sheet of failure cases (PGE < 0.2): per case the image as the model saw
    it with the object's box, and beside it the span's map (red raises, blue lowers the
    similarity; one symmetric scale per case) with the same box, titled with the phrase
    and its PGE. Returns the cases drawn."""
    shown = failures[:most]
    if not shown:
        return 0
    columns = min(columns, len(shown))
    rows = math.ceil(len(shown) / columns)
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(3.6 * columns, 2.0 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for position, record in enumerate(shown):
        image_ax, map_ax = axes[position // columns, 2 * (position % columns)], axes[position // columns, 2 * (position % columns) + 1]
        image = display(record["example_id"])
        height, width = image.shape[:2]
        span_map = np.asarray(record["image_map"], dtype=float)
        limit = float(np.abs(span_map).max()) or 1.0
        image_ax.imshow(image)
        # The map over the image's pixels, in imshow's convention (pixel i centred at i).
        map_ax.imshow(span_map, cmap="bwr", vmin=-limit, vmax=limit,
                      extent=(-0.5, width - 0.5, height - 0.5, -0.5), interpolation="nearest")
        for ax in (image_ax, map_ax):
            outline_box(ax, record["box"], (height, width))
            ax.set_xlim(-0.5, width - 0.5)
            ax.set_ylim(height - 0.5, -0.5)
        image_ax.set_title(f"\"{record['phrase']}\"", fontsize=8)
        map_ax.set_title(f"PGE {record['PGE']:.2f}", fontsize=8)
    fig.suptitle(f"{method}: objects with PGE < 0.2 (box in green; map: red raises, blue lowers the similarity)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return len(shown)


def _class_wise_section(results: Dict[str, Any], method: str, most: int = 20) -> List[str]:
    table = results.get("analyses", {}).get("class_wise_PGE", {}).get(method, {})
    if not table:
        return []
    lines = [f"Class-wise PGE of {method} (the {min(most, len(table))} most frequent categories):", "",
             "| category | objects | mPGE | median PGE | PGA |", "| --- | --- | --- | --- | --- |"]
    for category, row in list(table.items())[:most]:
        lines.append(f"| {category} | {row['count']} | {_cell(row['mPGE'])} | {_cell(row['median_PGE'])} | "
                     f"{_cell(row['PGA'])} |")
    return lines + [""]


def _significance_section(results: Dict[str, Any]) -> List[str]:
    pairs = results.get("analyses", {}).get("significance", {}).get("pairs", [])
    if not pairs:
        return []
    lines = ["Almost stochastic order of the PGE distributions (deepsig's `aso`, confidence 0.95): "
             "ε_min < 0.5 means the first method's PGE is almost stochastically larger (the smaller, the stronger).",
             "", "| A | B | ε_min(A over B) |", "| --- | --- | --- |"]
    lines += [f"| {p['a']} | {p['b']} | {_cell(p['epsilon_min'])} |" for p in pairs]
    return lines + [""]


def _hard_negative_section(results: Dict[str, Any]) -> List[str]:
    table = results.get("analyses", {}).get("hard_negatives", {})
    if not table:
        return []
    lines = ["Hard negatives per swap (δS: the similarity, δA: the swapped words' attribution with the object's box; "
             "false caption minus true caption):", "",
             "| method | swap | count | δS | δA | δA < 0 |", "| --- | --- | --- | --- | --- | --- |"]
    for method, categories in table.items():
        for category, row in categories.items():
            lines.append(f"| {method} | {category} | {row['count']} | {_cell(row['delta_S'])} | "
                         f"{_cell(row['delta_A'])} | {_cell(row['share_A_lower'])} |")
    return lines + [""]


def _skipped_lines(model: Dict[str, Any]) -> List[str]:
    """The methods that could not explain the model, each with its reason (none: no lines)."""
    skipped = model.get("skipped_methods") or {}
    return [f"Not run on this model: {name} ({reason})." for name, reason in skipped.items()] + ([""] if skipped else [])


def _layer_words(layer: Any) -> str:
    return "the embeddings layers" if layer == "embeddings" else f"encoder layer {layer}"


def _faithfulness_pairs(settings: Dict[str, Any]) -> str:
    count = settings.get("faithfulness_examples", "all")
    return "every pair" if count in (None, "all") else f"the first {count} pairs"


def write_report(results: Dict[str, Any], out: str, energies: Dict[str, List[float]],
                 gallery: Optional[str] = None) -> None:
    """Writes ``report.md``, ``completeness.png``, ``curves.png`` and ``pge.png`` (the
    ``energies``: each method's PGE per object) into ``out``; ``gallery`` is the failure
    gallery's file name, already written."""
    if results.get("completeness"):
        _plot_completeness(results["completeness"], os.path.join(out, "completeness.png"))
    _plot_curves(results["curves"]["mean"], os.path.join(out, "curves.png"))
    _plot_energies(energies, os.path.join(out, "pge.png"))
    model, settings, dataset = results["model"], results["settings"], results["dataset"]
    if dataset["name"] == "demo":
        what = f"{settings['scenes']} held-out scenes of the bundled demo world (seed {settings['seed']})"
        if dataset["examples"] < settings["scenes"]:
            what = (f"The first {dataset['examples']} of {settings['scenes']} held-out scenes of the bundled demo "
                    f"world (seed {settings['seed']}, --limit {dataset['examples']})")
        title = "Evaluation on the bundled demo world"
    else:
        what = f"{dataset['examples']} image-caption pairs of {dataset['name']}"
        title = f"Evaluation on {dataset['name']}"
    retrieval = (f" (caption->image top-1 retrieval {model['retrieval_top1']:.3f}: {model['retrieval_protocol']})"
                 if "retrieval_top1" in model else "")
    steps = settings["n_steps"]
    steps_text = (f"n_steps={steps}" if steps != "auto" else
                  f"n_steps='auto' (tolerance {settings.get('tolerance')}); LayerIntegratedGradients n_steps="
                  f"{settings['lig_n_steps']}")
    lines = [
        f"# {title}", "",
        f"{what}, {dataset['objects']} named objects; {model['name']}{retrieval}; gradient methods (BII, "
        f"InteractionCAM, ITSM-H, LayerIntegratedGradients) at {_layer_words(model['layer'])}, {steps_text}; "
        "InteractionLIME and WeightedBanzhafInteractions mask the inputs (the embeddings layers), as in their papers.",
        "", *_skipped_lines(model), results_table(results), "",
        "PGA: the span map's top patch lies in the object's box; mPGE: mean share of the span map's positive mass "
        "in the box; CID / CII: area under the similarity curve while image patches are removed / inserted in the "
        "order of the span's map (caption fixed); CTD / CTI: the same for caption tokens in the order of the box's "
        f"map (image fixed); p-faithfulness: Spearman correlation between the game and the explanation's prediction "
        f"over {settings['n_coalitions']} coalitions per pair drawn with p = {settings['p']}, on "
        f"{_faithfulness_pairs(settings)} (it needs every token-patch interaction: BII's whole matrix, where the "
        "other metrics read one row per object span and one column per box); s / pair: the seconds a method's pair "
        "costs, its hard negatives included. First-order methods "
        "(LayerIntegratedGradients, LayerGradCam on the conditioned similarity) give one map per side, the same for "
        "every span and box; LayerGradCam has no text-side layer it can take (n/a).", "",
        analysis_table(results), "",
        "Object discrimination (pairs naming two or more objects): the share of objects whose span-box attribution "
        "with their own box is positive, of other objects' boxes negative, and above every other box. Hard "
        "negatives: one word swapped (δS, δA means over the negatives; δA < 0 the share that lowered the swapped "
        "words' attribution with the object's box).", "",
    ]
    lines += _class_wise_section(results, "BilinearIntegratedInteractions"
                                 if "BilinearIntegratedInteractions" in results["methods"] else next(iter(results["methods"])))
    lines += _significance_section(results)
    lines += _hard_negative_section(results)
    if results.get("per_layer"):
        per_layer = results["per_layer"]
        lines += ["## Per layer", "",
                  f"The gradient methods at the embeddings and at every encoder layer, on the first "
                  f"{per_layer['examples']} pairs ({steps_text}; completeness error: BII's |delta| relative to the "
                  "score its terms decompose, LayerIntegratedGradients' relative convergence delta):", "",
                  per_layer_table(per_layer), ""]
    if results.get("completeness"):
        lines += ["![completeness error](completeness.png)", ""]
    lines += ["![insertion and deletion curves](curves.png)", "", "![pointing-game energy](pge.png)", ""]
    if gallery:
        lines += [f"![failure cases]({gallery})", ""]
    lines.append(f"Run time {settings['seconds']:.0f} s on {settings['machine']} (torch {settings['torch']}), "
                 f"{settings['processes']} process(es).")
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
