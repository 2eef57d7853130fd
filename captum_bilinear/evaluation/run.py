"""``captum-bilinear evaluate``: every method on held-out scenes of the demo world."""

import json
import os
import platform
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from captum_bilinear import BilinearIntegratedInteractions
from captum_bilinear.encoders import as_dual_encoder
from captum_bilinear.evaluation.explainers import EXPLAINERS, PairExplanation, PairInputs, RunSettings
from captum_bilinear.evaluation.report import write_report
from captum_bilinear.evaluation.scene_metrics import (
    CURVE_GRID,
    CachedGame,
    SceneContext,
    discrimination_record,
    faithfulness_record,
    hard_negative_record,
    mean_or_nan,
    object_records,
)
from captum_bilinear.metrics import PairMaskingGame, PatchMaskingScore, TokenMaskingScore, default_text_players
from captum_bilinear.zoo import HELD_OUT_SEED, SceneGenerator, demo_settings, load_demo_model, retrieval_top1, scene_inputs

#: Quadrature sizes of the completeness-error plot (the paper's Appendix D).
COMPLETENESS_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)
COMPLETENESS_METHODS = ("gausslegendre", "riemann_right")


def evaluation_scenes(n_scenes: int, seed: int) -> List[Any]:
    """The held-out scenes ``captum-bilinear evaluate --seed`` uses (the demo model was
    trained on stream 0; these come from a stream of their own per seed)."""
    return SceneGenerator(HELD_OUT_SEED + 1 + seed, mode="mixed").scenes(n_scenes)


def _pair_inputs(model: Any, dual: Any, batch: Dict[str, torch.Tensor], layer: int) -> PairInputs:
    input_ids, attention_mask, pixel_values = batch["input_ids"], batch["attention_mask"], batch["pixel_values"]
    (text_reference,) = dual.default_baselines_a((input_ids,), ())
    (image_reference,) = dual.default_baselines_b((pixel_values,), ())
    return PairInputs(
        input_ids, attention_mask, pixel_values, text_reference, image_reference,
        layers=(model.text_model.encoder.layers[layer], model.vision_model.encoder.layers[layer]),
        input_layers=(model.text_model.embeddings, model.vision_model.embeddings),
        players_a=default_text_players(input_ids[0]),
    )


def _scene_context(model: Any, dual: Any, pair: PairInputs, pad_token_id: int) -> SceneContext:
    config = model.config.vision_config
    grid = (config.image_size // config.patch_size,) * 2

    def embed_text(ids: torch.Tensor) -> torch.Tensor:
        return dual.embed_a(ids)

    def embed_image(pixels: torch.Tensor) -> torch.Tensor:
        return dual.embed_b(pixels)

    with torch.no_grad():
        text_embedding = embed_text(pair.input_ids)[0]
        image_embedding = embed_image(pair.pixel_values)[0]
    game = PairMaskingGame(embed_text, embed_image, pair.input_ids[0], pair.pixel_values[0], pad_token_id, grid,
                           baseline=pair.image_reference, text_players=pair.players_a.tolist())
    with torch.no_grad():
        empty = float(game(torch.zeros(1, game.n_players, dtype=torch.bool))[0])
    return SceneContext(
        image_size=(config.image_size, config.image_size), grid=grid, has_cls=True, players_a=pair.players_a,
        patch_score=PatchMaskingScore(embed_image, text_embedding, pair.pixel_values[0], grid,
                                      baseline=pair.image_reference),
        token_score=TokenMaskingScore(embed_text, image_embedding, pair.input_ids[0], pad_token_id,
                                      players=pair.players_a.tolist()),
        game=CachedGame(game), empty_game_value=empty,
    )


def completeness_curves(model: Any, tokenizer: Any, processor: Any, scenes: Sequence[Any], layer: int,
                        steps: Sequence[int] = COMPLETENESS_STEPS) -> Dict[str, Dict[str, List[float]]]:
    """Median (and quartiles) of BII's relative completeness error over ``scenes`` for
    each quadrature and number of nodes (the paper's Appendix D)."""
    curves: Dict[str, Dict[str, List[float]]] = {}
    layers = (model.text_model.encoder.layers[layer], model.vision_model.encoder.layers[layer])
    bii = BilinearIntegratedInteractions(model, layers)
    for method in COMPLETENESS_METHODS:
        usable = [n for n in steps if not (method.startswith("riemann") and n < 2)]  # Riemann sums need 2 nodes
        errors = np.zeros((len(scenes), len(usable)))
        for row, scene in enumerate(scenes):
            batch = scene_inputs(scene, tokenizer, processor)
            inputs, extra = (batch["input_ids"], batch["pixel_values"]), ((batch["attention_mask"],), None)
            identity = bii.similarity_terms(inputs, additional_forward_args=extra).interaction.abs().item()
            for column, n_steps in enumerate(usable):
                _, delta = bii.attribute(inputs, additional_forward_args=extra, n_steps=n_steps, method=method,
                                         return_convergence_delta=True)
                errors[row, column] = abs(delta.item()) / max(identity, 1e-12)
        curves[method] = {
            "n_steps": usable,
            "median": np.median(errors, axis=0).tolist(),
            "q25": np.percentile(errors, 25, axis=0).tolist(),
            "q75": np.percentile(errors, 75, axis=0).tolist(),
        }
    return curves


def run_evaluation(
    n_scenes: int = 300,
    seed: int = 0,
    out: str = "evaluation",
    methods: Optional[Sequence[str]] = None,
    n_steps: int = 32,
    layer: Optional[int] = None,
    completeness_scenes: int = 10,
    completeness_steps: Sequence[int] = COMPLETENESS_STEPS,
    show_progress: bool = True,
) -> Dict[str, Any]:
    """Runs every method on ``n_scenes`` held-out scenes and writes ``out/results.json``,
    ``out/report.md`` and the plots; returns the results.

    Args:
        n_scenes: number of held-out scenes.
        seed: scene stream (and the sampling methods' random state).
        out: output directory (created).
        methods: names from :data:`~captum_bilinear.evaluation.explainers.EXPLAINERS`
            (default: all).
        n_steps: quadrature nodes of BII and LayerIntegratedGradients.
        layer: encoder layer of the gradient methods (default: the demo model's).
        completeness_scenes: scenes for the completeness-error-vs-n_steps plot.
        completeness_steps: the n_steps of that plot.
        show_progress: progress bar over the scenes.

    Returns:
        The content of ``results.json``.

    Example:
        >>> import tempfile
        >>> results = run_evaluation(1, out=tempfile.mkdtemp(), methods=["InteractionCAM"], show_progress=False,
        ...                          completeness_scenes=0)
        >>> sorted(results["methods"]["InteractionCAM"])[:3]
        ['CID', 'CII', 'CTD']
    """
    names = list(EXPLAINERS) if methods is None else list(methods)
    unknown = [name for name in names if name not in EXPLAINERS]
    if unknown:
        raise ValueError(f"methods: unknown {unknown}; expected some of {', '.join(EXPLAINERS)}")
    os.makedirs(out, exist_ok=True)
    model, tokenizer, processor = load_demo_model()
    dual = as_dual_encoder(model)
    settings_file = demo_settings()
    layer = int(settings_file.get("default_layer", -2)) if layer is None else layer
    pad_token_id = model.config.text_config.pad_token_id
    settings = RunSettings(seed=seed, n_steps=n_steps)
    scenes = evaluation_scenes(n_scenes, seed)
    per_method: Dict[str, Dict[str, List[Any]]] = {name: {} for name in names}

    def add(name: str, record: Dict[str, Any]) -> None:
        for key, value in record.items():
            per_method[name].setdefault(key, []).append(value)

    started = time.perf_counter()
    for index, scene in enumerate(tqdm(scenes, desc="evaluate", unit="scene", disable=not show_progress)):
        batch = scene_inputs(scene, tokenizer, processor)
        pair = _pair_inputs(model, dual, batch, layer)
        context = _scene_context(model, dual, pair, pad_token_id)
        negative_scene = scene.hard_negative(seed=seed * 100003 + index)
        negative_batch = scene_inputs(negative_scene, tokenizer, processor)
        negative_pair = _pair_inputs(model, dual, negative_batch, layer)
        with torch.no_grad():
            score = float(dual(batch["input_ids"], batch["pixel_values"], (batch["attention_mask"],)))
            negative_score = float(dual(negative_batch["input_ids"], negative_batch["pixel_values"],
                                        (negative_batch["attention_mask"],)))
        changed = negative_scene.objects[negative_scene.negative[0]]
        scene_settings = RunSettings(seed=settings.seed * 1000003 + index, n_steps=settings.n_steps)
        for name in names:
            explanation: PairExplanation = EXPLAINERS[name](model, dual, pair, scene_settings)
            add(name, {"seconds_per_pair": explanation.seconds})
            with torch.no_grad():
                for record in object_records(explanation, scene.objects, context):
                    add(name, record)
                add(name, faithfulness_record(explanation, context, scene_settings.seed))
                add(name, discrimination_record(explanation, scene.objects, context))
            if explanation.interactions is not None:
                negative = EXPLAINERS[name](model, dual, negative_pair, scene_settings)
                add(name, hard_negative_record(explanation, negative, changed, context, score, negative_score))
    elapsed = time.perf_counter() - started

    retrieval = retrieval_top1(model, tokenizer, processor, n_scenes=32, n_sets=4)
    curves = completeness_curves(model, tokenizer, processor, scenes[:completeness_scenes], layer,
                                 completeness_steps) if completeness_scenes > 0 else {}
    summary_keys = ("PGA", "PGE", "CID", "CII", "CTD", "CTI", "p_faithfulness", "p_faithfulness_r2",
                    "seconds_per_pair", "own_positive", "cross_negative", "own_above_cross",
                    "hard_negative_delta_S", "hard_negative_delta_A")
    results: Dict[str, Any] = {
        "model": {
            "name": "bundled demo CLIP",
            "retrieval_top1": retrieval,
            "retrieval_protocol": "caption->image top-1 among 32 held-out scenes naming every object, mean of 4 galleries",
            "layer": layer,
        },
        "settings": {
            "scenes": n_scenes, "seed": seed, "n_steps": n_steps, "p": 0.5, "n_coalitions": 256,
            "named_objects": sum(len(scene.objects) for scene in scenes),
            "seconds": elapsed, "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        },
        "methods": {
            name: {
                ("mPGE" if key == "PGE" else key): mean_or_nan(values[key]) if key in values else float("nan")
                for key in summary_keys
            }
            for name, values in per_method.items()
        },
        "completeness": curves,
    }
    curves_per_method = {
        name: {key: np.mean(np.asarray(values[f"{key}_curve"]), axis=0).tolist()
               for key in ("CID", "CII", "CTD", "CTI") if values.get(f"{key}_curve")}
        for name, values in per_method.items()
    }
    results["curves"] = {"fractions": CURVE_GRID.tolist(), "mean": curves_per_method}
    energies = {name: values.get("PGE", []) for name, values in per_method.items()}
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1, sort_keys=False, allow_nan=True)
    write_report(results, curves_per_method, energies, out)
    return results
