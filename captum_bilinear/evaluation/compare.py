"""``captum-bilinear evaluate --model A --model B ...``: the same pairs through each model.

Runs the single-model evaluation (:func:`~captum_bilinear.evaluation.run_evaluation`)
once per model into ``out/<model>/`` -- each a complete run with its own records,
``results.json``, ``report.md`` and plots, resumable on its own -- and then writes
``out/comparison.json`` and ``out/comparison.md``: a row per (model, method), and per
method the paired differences between the models on the objects and pairs both runs
scored (pointing game, PGE, p-faithfulness), with 95 % bootstrap intervals that resample
the pairs. Figures (``out/figures/``, :mod:`~captum_bilinear.evaluation.compare_figures`)
show the same pairs under each model.
"""

import json
import os
import re
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from captum_bilinear.evaluation.records import complete_blocks

#: Comparison file names in ``out``.
COMPARISON_JSON, COMPARISON_MD = "comparison.json", "comparison.md"
#: Columns of the (model, method) table: (key in results.json's method entry, header, better).
COLUMNS = (
    ("PGA", "PGA", "higher"),
    ("mPGE", "mPGE", "higher"),
    ("median_PGE", "median PGE", "higher"),
    ("CID", "CID", "lower"),
    ("CII", "CII", "higher"),
    ("CTD", "CTD", "lower"),
    ("CTI", "CTI", "higher"),
    ("p_faithfulness", "p-faithfulness", "higher"),
    ("own_above_cross", "own > others", "higher"),
    ("hard_negative_share_A_lower", "δA < 0", "higher"),
    ("seconds_per_pair", "s / pair", "lower"),
)
#: The paired differences: (name, record kind, record key).
PAIRED = (("PGA", "object", "PGA"), ("PGE", "object", "PGE"), ("p_faithfulness", "example", "p_faithfulness"))


def model_label(model: Optional[str]) -> str:
    """The directory name of a model's run in a comparison: the demo names as they are
    (``None`` is ``demo-clip``), a directory's last part, a hub id with ``/`` as ``--``.

    Example:
        >>> model_label(None), model_label("demo-siglip2"), model_label("openai/clip-vit-base-patch32")
        ('demo-clip', 'demo-siglip2', 'openai--clip-vit-base-patch32')
        >>> model_label("/models/my clip/")
        'my_clip'
    """
    if model is None:
        return "demo-clip"
    text = str(model).rstrip("/\\")
    if os.path.isdir(text) or text.startswith(("/", ".", "~")) or os.sep in text.replace("/", ""):
        text = os.path.basename(os.path.abspath(os.path.expanduser(text)))
    text = text.replace("/", "--")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "model"


def check_models(models: Any) -> List[Optional[str]]:
    """Two or more models, each named once; ``ValueError`` naming ``models`` otherwise,
    and for a bundled model this transformers cannot load (before any work)."""
    if isinstance(models, str) or not isinstance(models, (list, tuple)):
        raise TypeError(f"models: expected a list of model names, directories or hub ids, got {type(models).__name__}")
    models = [None if m is None else str(m) for m in models]
    if len(models) < 2:
        raise ValueError(f"models: a comparison needs at least two models, got {len(models)}")
    labels = [model_label(m) for m in models]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"models: each model once (their runs go to out/<name>/); {repeated} named more than once")
    if "demo-siglip2" in models:
        from captum_bilinear.zoo.siglip2 import siglip2_available

        if not siglip2_available():
            import transformers

            raise ValueError(f"models: demo-siglip2 needs transformers >= 4.49 (Siglip2Model); this is transformers "
                             f"{transformers.__version__}")
    return models


def _values(blocks: Dict[str, List[Dict[str, Any]]], method: str, kind: str, key: str) -> Dict[Tuple[str, Any], float]:
    """``(example_id, object or None) -> value`` of one method's records."""
    values = {}
    for example_id, records in blocks.items():
        for record in records:
            if record.get("kind") != kind or record.get("method") != method or record.get(key) is None:
                continue
            value = float(record[key])
            if np.isfinite(value):
                values[(example_id, record.get("object") if kind == "object" else None)] = value
    return values


def paired_difference(first: Dict[Tuple[str, Any], float], second: Dict[Tuple[str, Any], float],
                      n_resamples: int = 2000, seed: int = 0) -> Dict[str, Any]:
    """Mean of ``second - first`` over the keys both have, with a 95 % percentile
    bootstrap interval that resamples whole pairs (examples; their objects together).

    Example:
        >>> a = {("e1", 0): 0.0, ("e1", 1): 1.0, ("e2", 0): 0.5}
        >>> b = {("e1", 0): 1.0, ("e1", 1): 1.0, ("e2", 0): 0.5, ("e3", 0): 0.0}
        >>> result = paired_difference(a, b)
        >>> result["difference"], result["n"], result["examples"]
        (0.3333333333333333, 3, 2)
    """
    keys = sorted(set(first) & set(second), key=str)
    if not keys:
        return {"difference": None, "ci95": [None, None], "n": 0, "examples": 0, "first": None, "second": None}
    examples = sorted({key[0] for key in keys})
    index = {example: i for i, example in enumerate(examples)}
    sums, counts = np.zeros(len(examples)), np.zeros(len(examples))
    for key in keys:
        sums[index[key[0]]] += second[key] - first[key]
        counts[index[key[0]]] += 1
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(examples), size=(n_resamples, len(examples)))
    means = sums[draws].sum(1) / counts[draws].sum(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "difference": float(sums.sum() / counts.sum()), "ci95": [float(low), float(high)], "n": len(keys),
        "examples": len(examples), "first": float(np.mean([first[k] for k in keys])),
        "second": float(np.mean([second[k] for k in keys])),
    }


def compare_runs(runs: Dict[str, str], seed: int = 0) -> Dict[str, Any]:
    """The comparison of finished single-model runs ``{label: directory}`` (the first is
    the reference of the paired differences): each run's ``results.json`` model entry
    and method table, and per method in both runs the paired differences of :data:`PAIRED`.
    """
    results, blocks = {}, {}
    for label, directory in runs.items():
        with open(os.path.join(directory, "results.json"), encoding="utf-8") as handle:
            results[label] = json.load(handle)
        blocks[label] = complete_blocks(directory)
    labels = list(runs)
    reference = labels[0]
    comparison: Dict[str, Any] = {
        "models": {label: {**results[label]["model"], "directory": os.path.basename(os.path.normpath(runs[label])),
                           "examples": results[label]["dataset"].get("examples"),
                           "objects": results[label]["settings"].get("named_objects"),
                           "seconds": results[label]["settings"].get("seconds")}
                   for label in labels},
        "dataset": results[reference]["dataset"],
        "settings": {key: results[reference]["settings"].get(key) for key in
                     ("scenes", "seed", "n_steps", "tolerance", "lig_n_steps", "limit", "fit", "min_box_patches")},
        "methods": {label: results[label]["methods"] for label in labels},
        "differences": [],
    }
    for label in labels[1:]:
        for method in results[reference]["methods"]:
            if method not in results[label]["methods"]:
                continue
            entry: Dict[str, Any] = {"model": label, "reference": reference, "method": method}
            for name, kind, key in PAIRED:
                entry[name] = paired_difference(_values(blocks[reference], method, kind, key),
                                                _values(blocks[label], method, kind, key), seed=seed)
            comparison["differences"].append(entry)
    return comparison


def _cell(value: Any) -> str:
    from captum_bilinear.evaluation.report import _cell as cell

    return cell(value)


def _interval(entry: Dict[str, Any]) -> str:
    if entry["difference"] is None:
        return "n/a"
    low, high = entry["ci95"]
    marker = " *" if low > 0 or high < 0 else ""
    return f"{entry['difference']:+.3f} [{low:+.3f}, {high:+.3f}]{marker}"


def comparison_markdown(comparison: Dict[str, Any], figures: Sequence[str] = ()) -> str:
    """``comparison.md``: the models, the (model, method) table, the paired differences
    and the figures.

    Example:
        >>> comparison = {"models": {"a": {"name": "A", "layer": 3}}, "dataset": {"name": "demo", "examples": 2},
        ...               "settings": {"seed": 0, "n_steps": "auto"}, "methods": {"a": {"BII": {"PGA": 0.5}}},
        ...               "differences": []}
        >>> [line for line in comparison_markdown(comparison).splitlines() if line.startswith("| a |")][-1][:23]
        '| a | BII | 0.500 | n/a'
    """
    dataset, settings = comparison["dataset"], comparison["settings"]
    lines = ["# Comparison of models", ""]
    what = f"{dataset.get('examples')} examples of {dataset.get('name')}"
    if dataset.get("name") == "demo":
        what = f"{dataset.get('examples')} held-out scenes of the demo world (seed {settings.get('seed')})"
    lines += [f"The same {what}, every model at its layer, BII with `n_steps={settings.get('n_steps')}`"
              + (f" (tolerance {settings.get('tolerance')})" if settings.get("n_steps") == "auto" else "") + ".", ""]
    lines += ["| model | name | layer | retrieval top-1 | objects | wall time (s) | skipped methods |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, model in comparison["models"].items():
        skipped = ", ".join(f"{name} ({reason})" for name, reason in model.get("skipped_methods", {}).items()) or "-"
        seconds = model.get("seconds")
        lines.append(f"| {label} | {model.get('name')} | {model.get('layer')} | {_cell(model.get('retrieval_top1'))} | "
                     f"{model.get('objects', 'n/a')} | {'n/a' if seconds is None else f'{seconds:.0f}'} | {skipped} |")
    lines += ["", "## Every method under every model", "",
              "| model | method | " + " | ".join(f"{title} ({better})" for _, title, better in COLUMNS) + " |",
              "| --- " * (len(COLUMNS) + 2) + "|"]
    for label, methods in comparison["methods"].items():
        for method, values in methods.items():
            lines.append(f"| {label} | {method} | " + " | ".join(_cell(values.get(key)) for key, _, _ in COLUMNS) + " |")
    if comparison["differences"]:
        reference = comparison["differences"][0]["reference"]
        lines += ["", f"## Paired differences (model minus {reference})", "",
                  "Mean difference on the objects (PGA, PGE) or pairs (p-faithfulness) both runs scored, with a "
                  "95 % bootstrap interval over the pairs (2,000 resamples); * where the interval excludes 0.", "",
                  "| model | method | objects | ΔPGA | ΔPGE | pairs | Δp-faithfulness |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for entry in comparison["differences"]:
            lines.append(f"| {entry['model']} | {entry['method']} | {entry['PGE']['n']} | {_interval(entry['PGA'])} | "
                         f"{_interval(entry['PGE'])} | {entry['p_faithfulness']['n']} | "
                         f"{_interval(entry['p_faithfulness'])} |")
    if figures:
        lines += ["", "## The same pairs under each model", ""]
        lines += [f"![{os.path.basename(path)}]({path})" for path in figures]
    lines += ["", "Each model's own report (per-method analyses, curves, failure gallery) is in "
              + ", ".join(f"`{label}/report.md`" for label in comparison["models"]) + "."]
    return "\n".join(lines) + "\n"


def _check_every_model(models: Sequence[Optional[str]], config: Dict[str, Any]) -> None:
    """Each model loads with the layer, and some method can explain it, before the first
    model's run (else a setting only the second model refuses ends the command after the
    whole first run). Loaded on the CPU and let go: each run loads its model again."""
    from captum_bilinear.evaluation.bundle import load_bundle
    from captum_bilinear.evaluation.run import EvaluationConfig, applicable_methods

    for model in models:
        checked = EvaluationConfig(**{**config, "model": model})
        checked.validate()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # each run warns of the methods it skips
            applicable_methods(load_bundle(model, checked.layer, "cpu"), checked)


def run_comparison(models: Sequence[Optional[str]], out: str, figure_pairs: int = 4,
                   figure_methods: Sequence[str] = ("bii", "fixlip"), **options: Any) -> Dict[str, Any]:
    """Evaluates each of ``models`` on the same pairs (``out/<model>/``, see
    :func:`model_label`) and writes ``out/comparison.json``, ``out/comparison.md`` and
    ``out/figures/``; returns the comparison (on rank 0; ``{}`` elsewhere).

    Args:
        models: two or more directories, hub ids or bundled names (``demo-clip``,
            ``demo-siglip2``); the first is the reference of the differences.
        out: the comparison's directory.
        figure_pairs: how many pairs to draw under every model (0: none).
        figure_methods: the methods drawn (short or full names; those a model cannot run
            are left out for it).
        **options: everything else :func:`~captum_bilinear.evaluation.run_evaluation`
            takes (``n_scenes``, ``seed``, ``dataset``, ``methods``, ``n_steps``,
            ``layer``, ``resume``, ...), the same for every model.

    Returns:
        The content of ``comparison.json``.

    Example:
        >>> run_comparison(["demo-clip"], "out")
        Traceback (most recent call last):
        ...
        ValueError: models: a comparison needs at least two models, got 1
    """
    from captum_bilinear.evaluation.distributed import current_process
    from captum_bilinear.evaluation.methods import resolve_methods
    from captum_bilinear.evaluation.run import EvaluationConfig, run_evaluation

    models = check_models(models)
    if "model" in options:
        raise TypeError("run_comparison: pass the models as models=[...], not model=")
    if isinstance(figure_pairs, bool) or not isinstance(figure_pairs, int) or figure_pairs < 0:
        raise ValueError(f"figure_pairs: expected a non-negative int, got {figure_pairs!r}")
    drawn = resolve_methods(list(figure_methods)) if figure_pairs else []
    names = {"n_scenes": "scenes", "completeness_scenes": "completeness_examples"}
    config = {names.get(k, k): v for k, v in options.items() if k not in ("show_progress", "resume", "device",
                                                                          "completeness_steps")}
    if "methods" in config and config["methods"] is not None:
        config["methods"] = list(config["methods"])
    EvaluationConfig(**config).validate()  # the settings' errors before the first model's run
    _check_every_model(models, config)
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a directory path, got {type(out).__name__}")
    out = os.fspath(out)
    runs: Dict[str, str] = {}
    main_process = True
    # Under torchrun one process group serves every model's run: a run that started its
    # own would end it, and a rank that went on to the next model re-joined while rank 0
    # still summarised the last one, through a store rank 0 then closed.
    process = current_process(options.get("device"))
    try:
        for model in models:
            label = model_label(model)
            runs[label] = os.path.join(out, label)
            # every rank runs every model (they share its pairs); rank 0 writes the comparison
            main_process = bool(run_evaluation(out=runs[label], model=model, **options))
    finally:
        process.close()
    if not main_process:
        return {}
    comparison = compare_runs(runs, seed=int(options.get("seed", 0)))
    figures: List[str] = []
    if figure_pairs:
        from captum_bilinear.evaluation.compare_figures import write_pair_figures

        figures = write_pair_figures(dict(zip(runs, models)), runs, out, drawn, figure_pairs, options)
    comparison["figures"] = figures
    with open(os.path.join(out, COMPARISON_JSON), "w", encoding="utf-8") as handle:
        json.dump(comparison, handle, indent=1, allow_nan=True)
    with open(os.path.join(out, COMPARISON_MD), "w", encoding="utf-8") as handle:
        handle.write(comparison_markdown(comparison, figures))
    return comparison
