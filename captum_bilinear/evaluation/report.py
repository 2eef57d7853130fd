"""``report.md`` and the plots of an evaluation run."""

import math
import os
from typing import Any, Dict, List

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt  # noqa: E402

from captum_bilinear.evaluation.scene_metrics import CURVE_GRID  # noqa: E402

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


def _cell(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def results_table(results: Dict[str, Any]) -> str:
    """The methods x metrics table of ``results.json`` as markdown.

    Example:
        >>> print(results_table({"methods": {"BII": {"PGA": 0.5, "mPGE": float("nan")}}}).splitlines()[-1])
        | BII | 0.500 | n/a | n/a | n/a | n/a | n/a | n/a | n/a |
    """
    header = "| method | " + " | ".join(f"{title} ({better})" for _, title, better in COLUMNS) + " |"
    rule = "| --- " * (len(COLUMNS) + 1) + "|"
    rows = [f"| {name} | " + " | ".join(_cell(values.get(key)) for key, _, _ in COLUMNS) + " |"
            for name, values in results["methods"].items()]
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


def write_report(results: Dict[str, Any], curves: Dict[str, Dict[str, List[float]]],
                 energies: Dict[str, List[float]], out: str) -> None:
    """Writes ``report.md``, ``completeness.png``, ``curves.png`` and ``pge.png`` into ``out``."""
    if results.get("completeness"):
        _plot_completeness(results["completeness"], os.path.join(out, "completeness.png"))
    _plot_curves(curves, os.path.join(out, "curves.png"))
    _plot_energies(energies, os.path.join(out, "pge.png"))
    model, settings = results["model"], results["settings"]
    lines = [
        "# Evaluation on the bundled demo world",
        "",
        f"{settings['scenes']} held-out scenes (seed {settings['seed']}), {settings['named_objects']} named objects; "
        f"bundled demo CLIP (caption->image top-1 retrieval {model['retrieval_top1']:.3f}: {model['retrieval_protocol']}); "
        f"gradient methods at encoder layer {model['layer']}, n_steps={settings['n_steps']}; InteractionLIME and "
        "WeightedBanzhafInteractions mask the inputs (the embeddings layers), as in their papers.",
        "",
        results_table(results),
        "",
        "PGA: the span map's top patch lies in the object's box; mPGE: mean share of the span map's positive mass "
        "in the box; CID / CII: area under the similarity curve while image patches are removed / inserted in the "
        "order of the span's map (caption fixed); CTD / CTI: the same for caption tokens in the order of the box's "
        f"map (image fixed); p-faithfulness: Spearman correlation between the game and the explanation's prediction "
        f"over {settings['n_coalitions']} coalitions per scene drawn with p = {settings['p']}. First-order methods "
        "(LayerIntegratedGradients, LayerGradCam on the conditioned similarity) give one map per side, the same for "
        "every span and box; LayerGradCam has no text-side layer it can take (n/a).",
        "",
        "![completeness error](completeness.png)",
        "",
        "![insertion and deletion curves](curves.png)",
        "",
        "![pointing-game energy](pge.png)",
        "",
        f"Run time {settings['seconds']:.0f} s on {settings['machine']} (torch {settings['torch']}).",
    ]
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
