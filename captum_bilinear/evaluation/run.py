"""``captum-bilinear evaluate``: every method on a dataset's image-caption pairs.

One example at a time (per process): prepare it for the model, explain the pair with
each method, score every explanation (:mod:`~captum_bilinear.evaluation.scoring`) and
write its records in one block (:mod:`~captum_bilinear.evaluation.records`). At the end
rank 0 merges the records into ``results.json``, ``report.md`` and the plots.
"""

import hashlib
import json
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from captum_bilinear.first_order import LIG_STEPS_WITH_AUTO
from captum_bilinear.evaluation.command import EVALUATION_TOLERANCE, FAITHFULNESS_EXAMPLES
from captum_bilinear.evaluation.bundle import LayerSpec, ModelBundle, load_bundle, parse_layer
from captum_bilinear.evaluation.distributed import Process, current_process
from captum_bilinear.evaluation.methods import (
    EVALUATION_METHODS,
    GRADIENT_METHODS,
    PairInputs,
    RunSettings,
    check_steps,
    resolve_methods,
    timed_explanation,
    unsupported_methods,
)
from captum_bilinear.evaluation.records import RecordWriter, block_settings, complete_blocks, record_files

#: Quadrature sizes of the completeness-error plot (the paper's Appendix D).
COMPLETENESS_STEPS = (1, 2, 4, 8, 16, 32, 64, 128)
COMPLETENESS_METHODS = ("gausslegendre", "riemann_right")
DATASETS = ("demo", "coco", "flickr30k-entities", "hnc")
RUN_FILE = "run.json"


@dataclass
class EvaluationConfig:
    """Everything an evaluation run depends on (``run.json``; a resumed run must match).

    Attributes:
        dataset: ``"demo"``, ``"coco"``, ``"flickr30k-entities"`` or ``"hnc"``.
        scenes, seed: the demo world's held-out scenes (``seed`` also seeds the sampling
            methods and the p-faithfulness coalitions of every dataset).
        images, captions, instances: COCO; root, split: Flickr30k Entities (with images);
        annotations: HNC (with images); synonyms: COCO's synonyms file.
        model: HF CLIP / SigLIP / SigLIP-2 directory or hub id, or a bundled demo model's
            name (``"demo-clip"``, ``"demo-siglip2"``; None: the demo CLIP).
        layer: ``"embeddings"`` or an encoder layer index of the gradient methods.
        methods: evaluation names (None: all).
        n_steps, tolerance: BII's quadrature (an int, or ``"auto"`` with a tolerance).
        limit: the first ``limit`` examples only.
        fit, min_box_patches: image fitting and the box-size filter.
        completeness_examples, completeness_steps: BII's completeness-vs-n_steps plot.
        faithfulness_examples: the first examples get every method's p-faithfulness
            (None: all); on the others BII computes only what the other metrics read.
        per_layer_scenes: examples of the per-layer table (0: none).
        keep_terms: save every pair's terms under ``terms/`` (each pair's explorer in
            ``pages/`` and ``report.html`` open them; the results do not depend on it).
    """

    dataset: str = "demo"
    scenes: int = 300
    seed: int = 0
    images: Optional[str] = None
    captions: Optional[str] = None
    instances: Optional[str] = None
    root: Optional[str] = None
    split: str = "test"
    annotations: Optional[str] = None
    synonyms: Optional[str] = None
    model: Optional[str] = None
    layer: Optional[LayerSpec] = None
    methods: Optional[List[str]] = None
    n_steps: Union[int, str] = "auto"
    tolerance: Optional[float] = EVALUATION_TOLERANCE
    limit: Optional[int] = None
    fit: str = "crop"
    min_box_patches: float = 1.0
    completeness_examples: int = 10
    completeness_steps: Sequence[int] = COMPLETENESS_STEPS
    faithfulness_examples: Optional[int] = FAITHFULNESS_EXAMPLES
    per_layer_scenes: int = 0
    keep_terms: bool = False

    def validate(self) -> None:
        """Raises ``ValueError`` naming the argument, before any model is loaded."""
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset: expected one of {DATASETS}, got {self.dataset!r}")
        required = {"coco": ("images", "captions", "instances"), "flickr30k-entities": ("root", "images"),
                    "hnc": ("annotations", "images")}.get(self.dataset, ())
        missing = [name for name in required if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{', '.join('--' + m for m in missing)}: required for --dataset {self.dataset}")
        self.methods = resolve_methods(self.methods)
        check_steps(self.n_steps, self.tolerance)
        if self.layer is not None:
            self.layer = parse_layer(self.layer)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            # the per-example seeds (seed * 1000003 + index) must stay seeds, and a negative one
            # would select another stream of scenes (-12346: the demo model's training scenes)
            raise ValueError(f"seed: expected an int in [0, 2**32), got {self.seed!r}")
        for name in ("scenes", "completeness_examples", "per_layer_scenes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1):
            raise ValueError(f"limit: expected a positive int, got {self.limit!r}")
        if self.faithfulness_examples is not None and (isinstance(self.faithfulness_examples, bool) or not isinstance(
                self.faithfulness_examples, int) or self.faithfulness_examples < 0):
            raise ValueError(f"faithfulness_examples: expected None or a non-negative int, got {self.faithfulness_examples!r}")

    def comparable(self) -> Dict[str, Any]:
        """The settings two runs' records must share to be merged."""
        keep = asdict(self)
        for name in ("completeness_examples", "completeness_steps", "per_layer_scenes", "limit", "keep_terms"):
            keep.pop(name)
        return json.loads(json.dumps(keep))

    @property
    def method_names(self) -> List[str]:
        """The evaluation names of ``methods`` (every method where it is None)."""
        return resolve_methods(self.methods)

    def path(self, name: str) -> str:
        """The file or folder argument ``name`` (``images``, ``root``, ...), which the dataset requires."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"--{name}: required for --dataset {self.dataset}")
        return value


def load_dataset(config: EvaluationConfig) -> Any:
    """The :class:`~captum_bilinear.datasets.Dataset` of a config."""
    from captum_bilinear import datasets

    if config.dataset == "demo":
        return datasets.demo_dataset(config.scenes, config.seed)
    if config.dataset == "coco":
        return datasets.read_coco(config.path("images"), config.path("captions"), config.path("instances"),
                                  config.synonyms)
    if config.dataset == "flickr30k-entities":
        return datasets.read_flickr30k_entities(config.path("root"), config.path("images"), config.split)
    return datasets.read_hnc(config.path("annotations"), config.path("images"))


def pair_inputs(bundle: ModelBundle, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                pixel_values: torch.Tensor, players: torch.Tensor,
                image_extra: Optional[Tuple[torch.Tensor, ...]] = None) -> PairInputs:
    """A pair with the model's default references (``pixel_values`` as the model takes
    them, ``image_extra`` the image side's additional forward arguments)."""
    (text_reference,) = bundle.dual.default_baselines_a((input_ids,), (attention_mask,))
    (image_reference,) = bundle.dual.default_baselines_b((pixel_values,), tuple(image_extra or ()))
    return PairInputs(input_ids, attention_mask, pixel_values, text_reference, image_reference, players, image_extra)


def model_image(bundle: ModelBundle, pixel_values: torch.Tensor) -> Tuple[ModelBundle, torch.Tensor,
                                                                          Optional[Tuple[torch.Tensor, ...]]]:
    """An example's image ``(1, C, H, W)`` as the model takes it: ``(bundle, pixel_values,
    image_extra)`` -- unchanged for an image model; for a NaFlex model its patches with
    ``(pixel_attention_mask, spatial_shapes)`` and the bundle for the image's own grid."""
    if not bundle.naflex:
        return bundle, pixel_values, None
    from captum_bilinear.images import image_to_patches

    values, mask, shapes = image_to_patches(pixel_values, bundle.patch_size)
    height, width = (int(v) for v in shapes[0])  # spatial_shapes: (patch rows, patch columns)
    return bundle.for_grid((height, width)), values, (mask, shapes)


class ImageSpaceEncoder:
    """A NaFlex dual encoder whose side b takes images ``(batch, C, H, W)`` (patched on the
    way in): what the masking metrics, which remove a patch's pixels, are given. Removing
    an image patch's pixels is removing that patch's slot, so the metrics are the same."""

    def __init__(self, dual: Any, patch_size: int) -> None:
        self.dual, self.patch_size = dual, patch_size

    def embed_a(self, *args: Any) -> torch.Tensor:
        return self.dual.embed_a(*args)

    def embed_b(self, pixel_values: torch.Tensor) -> torch.Tensor:
        from captum_bilinear.images import image_to_patches

        return self.dual.embed_b(*image_to_patches(pixel_values, self.patch_size))


def example_seed(seed: int, index: int) -> int:
    """The seed of the example at ``index`` in a run of ``seed``."""
    return int(seed) * 1000003 + int(index)


def evaluate_example(bundle: ModelBundle, example: Any, config: EvaluationConfig,
                     out: Optional[str] = None, curves: bool = True,
                     games: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """The records of one example: every method explained and scored (its terms kept
    under ``out`` with ``config.keep_terms``); ``curves=False`` leaves out the insertion
    and deletion curves; ``games`` (example id -> its p-faithfulness game played, a
    :class:`~captum_bilinear.metrics.SampledGame`) lets runs of the same examples at
    other layers play each example's game once."""
    from captum_bilinear.datasets.prepare import move_to, prepare_example
    from captum_bilinear.evaluation.scoring import ExampleScorer, Geometry

    prepared = move_to(prepare_example(example, bundle.tokenizer, bundle.image_processor, bundle.patch_size,
                                       config.fit, config.min_box_patches), bundle.device)
    seed = example_seed(config.seed, example.index)
    settings = RunSettings(seed=seed, n_steps=config.n_steps, tolerance=config.tolerance,
                           lig_n_steps=config.n_steps if isinstance(config.n_steps, int) else LIG_STEPS_WITH_AUTO)
    bundle, pixel_values, image_extra = model_image(bundle, prepared.pixel_values)
    pair = pair_inputs(bundle, prepared.input_ids, prepared.attention_mask, pixel_values, prepared.text_players,
                       image_extra)
    geometry = Geometry(prepared.image_size, bundle.grid, bundle.has_cls)
    scored, image_reference = bundle.dual, pair.image_reference
    if image_extra is not None:  # NaFlex: the metrics remove pixels of the image; the model sees them as patches
        from captum_bilinear.images import patches_to_image

        scored = ImageSpaceEncoder(bundle.dual, bundle.patch_size)
        image_reference = patches_to_image(pair.image_reference, image_extra[1], bundle.patch_size)
    scorer = ExampleScorer(scored, prepared.input_ids, prepared.pixel_values, image_reference,
                           prepared.text_players, bundle.pad_token_id, geometry, seed,
                           sample=None if games is None else games.get(example.example_id))
    negatives = [pair_inputs(bundle, n.input_ids, n.attention_mask, pixel_values, prepared.text_players,
                             image_extra) for n in prepared.negatives]
    with torch.no_grad():
        score = float(bundle.dual(pair.input_ids, pair.pixel_values, pair.extra[0], pair.extra[1]))
        negative_scores = [float(bundle.dual(n.input_ids, n.pixel_values, n.extra[0], n.extra[1])) for n in negatives]
    records: List[Dict[str, Any]] = [{
        "kind": "pair", "index": example.index, "image_id": example.image_id, "caption": example.caption,
        "score": score, "objects": len(prepared.objects), "negatives": len(prepared.negatives),
        "dropped": prepared.dropped,
    }]
    # p-faithfulness needs every pair's interaction: the whole matrix, on the first examples only
    faithful = config.faithfulness_examples is None or example.index < config.faithfulness_examples
    for name in config.method_names:
        method = EVALUATION_METHODS[name]
        maps = None
        start = time.perf_counter()
        if method.explain_objects is not None and not faithful and not config.keep_terms:
            terms, maps = method.explain_objects(
                bundle, pair, settings, [o.span for o in prepared.objects], [n.original_span for n in prepared.negatives],
                _box_weights([o.box for o in prepared.objects], geometry))
            terms = terms.to("cpu")
        else:
            terms = method.explain(bundle, pair, settings).to("cpu")
        negative_results = []
        if method.order == 2:  # a pair's cost includes its hard negatives'
            for negative, negative_pair in zip(prepared.negatives, negatives):
                negative_results.append(_explain_negative(method, bundle, negative_pair, settings, negative, geometry))
        seconds = time.perf_counter() - start
        if config.keep_terms and out is not None:
            from captum_bilinear.evaluation.pages import keep_pair_terms
            from captum_bilinear.selection import token_labels

            keep_pair_terms(out, example.example_id, example.caption, method, terms,
                            token_labels(bundle.tokenizer, prepared.input_ids[0].cpu()), bundle.grid, prepared.display)
        with torch.no_grad():
            record: Dict[str, Any] = {"kind": "example", "method": name, "seconds_per_pair": seconds}
            if faithful:
                record.update(scorer.faithfulness_record(terms))
            record.update(scorer.completeness_record(terms))
            if method.order == 2:
                record.update(scorer.discrimination_record(terms, prepared.objects, maps))
            records.append(record)
            records.extend({"kind": "object", "method": name, **r} for r in scorer.object_records(
                terms, method.order, method.text_side, prepared.objects, maps, curves=curves))
        for number, (negative, negative_score, (negative_terms, attribution)) in enumerate(zip(
                prepared.negatives, negative_scores, negative_results)):
            with torch.no_grad():
                records.append({"kind": "negative", "method": name, **scorer.negative_record(
                    terms, negative_terms, negative, score, negative_score, attribution_swapped=attribution,
                    maps=maps, number=number)})
    if games is not None and scorer.played_game is not None:
        games[example.example_id] = scorer.played_game
    return records


def _box_weights(boxes: List[Any], geometry: Any) -> torch.Tensor:
    from captum_bilinear.selection import box_weights

    return box_weights(boxes, geometry.image_size, geometry.grid, geometry.has_cls)


def _explain_negative(method: Any, bundle: ModelBundle, pair: PairInputs, settings: RunSettings, negative: Any,
                      geometry: Any) -> Tuple[Optional[Any], Optional[float]]:
    """A hard negative's terms, or -- for a method that computes one span with one box
    cheaply (BII, as groups) -- just that attribution."""
    if method.span_box is None:
        return timed_explanation(method, bundle, pair, settings)[0], None
    return None, method.span_box(bundle, pair, settings, tuple(negative.span), _box_weights([negative.box], geometry))


def settings_fingerprint(config: EvaluationConfig) -> str:
    """A short digest of the settings records must share to be merged (written with every
    block of records, so that records say what made them even without ``run.json``)."""
    text = json.dumps(config.comparable(), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_run_file(out: str) -> Optional[Dict[str, Any]]:
    """``out/run.json`` (None if absent); a damaged one is a ``ValueError`` naming it."""
    path = os.path.join(out, RUN_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            previous = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"out: {path} is damaged ({type(error).__name__}: {error}); it holds the settings of the "
                         "run whose records are beside it: restore it, or choose another --out") from error
    if not isinstance(previous, dict) or not isinstance(previous.get("config"), dict):
        raise ValueError(f"out: {path} is damaged (expected {{\"config\": {{...}}}}); it holds the settings of the "
                         "run whose records are beside it: restore it, or choose another --out")
    return previous


def _check_out(out: str, config: EvaluationConfig, resume: bool, process: Process) -> None:
    """Refuses to mix runs: an existing ``out`` with records needs ``--resume`` and the
    same settings, as ``run.json`` and the records' own fingerprints say (records whose
    settings nothing vouches for are not merged)."""
    path = os.path.join(out, RUN_FILE)
    existing = record_files(out)
    previous = read_run_file(out)
    if existing and not resume:
        raise ValueError(f"out: {out} has the records of an earlier run; pass --resume to continue it or "
                         "choose another --out")
    if resume and previous is not None and previous["config"] != config.comparable():
        changed = sorted(k for k in config.comparable() if previous["config"].get(k) != config.comparable()[k])
        raise ValueError(f"resume: {out} was run with other settings ({', '.join(changed)}); "
                         "use the same ones or another --out")
    if resume and existing:
        fingerprints = block_settings(out)
        others = {f for f in fingerprints if f != settings_fingerprint(config)}
        if others - {None}:
            raise ValueError(f"resume: {out} holds records made with other settings than these (another seed, "
                             "model, layer, dataset, ...); use the same ones or another --out")
        if None in others and previous is None:
            raise ValueError(f"resume: {out} has records but no {RUN_FILE}, so nothing says which settings made "
                             "them; restore it, or choose another --out")
    process.barrier()  # every rank has read the state before rank 0 writes
    if process.is_main:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"config": config.comparable()}, handle, indent=1)


def _progress(total: int, process: Process, show: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="evaluate", unit="pair", disable=not (show and process.is_main), smoothing=0.1)


def selected_examples(dataset: Any, config: EvaluationConfig) -> List[Any]:
    """The examples a run's settings select (the first ``limit``)."""
    return list(dataset.examples if config.limit is None else dataset.examples[: config.limit])


def _dropped(statistics: Dict[str, int]) -> str:
    reasons = [f"{count} {reason}" for reason, count in statistics.items()
               if count and reason not in ("captions", "true captions", "objects", "phrases", "named categories",
                                           "hard negatives", "usable hard negatives")]
    return "; ".join(reasons) or "none"


def _selected_blocks(out: str, dataset: Any, config: EvaluationConfig) -> Dict[str, List[Dict[str, Any]]]:
    """The complete blocks of the pairs ``config`` selects (a resumed run with a smaller
    ``--limit`` leaves records of further pairs on disk; the tables are of the selected)."""
    selected = {example.example_id for example in selected_examples(dataset, config)}
    return {example_id: records for example_id, records in complete_blocks(out).items() if example_id in selected}


def _dropped_in_the_model(blocks: Dict[str, List[Dict[str, Any]]]) -> Dict[str, int]:
    """The objects and negatives dropped when the pairs were mapped into the model (words
    cut, boxes outside the image or the model's view, too small), summed over the pairs."""
    total: Dict[str, int] = {}
    for records in blocks.values():
        for record in records:
            if record.get("kind") == "pair":
                for reason, count in (record.get("dropped") or {}).items():
                    total[reason] = total.get(reason, 0) + int(count)
    return total


def check_usable(dataset: Any, config: EvaluationConfig) -> None:
    """Refuses, before any model is loaded, a dataset with no usable image-caption pair
    (saying how many captions were read and why they were dropped) and one whose selected
    pairs' image files are missing (all named at once, not when their pair is reached)."""
    if not len(dataset):
        read = dataset.statistics.get("captions", dataset.statistics.get("true captions", 0))
        raise ValueError(f"dataset: no usable image-caption pair in the {config.dataset} files: {read} caption(s) "
                         f"read, every one dropped (dropped: {_dropped(dataset.statistics)}); see the layout in "
                         "'Evaluate on your data'")
    missing = []
    for example in selected_examples(dataset, config):
        locate = getattr(example.load, "locate", None)
        if locate is None:
            continue
        try:
            locate()
        except FileNotFoundError as error:
            missing.append(str(error).split("no such file: ", 1)[-1])
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ValueError(f"images: {len(missing)} image file(s) of the selected pairs are missing: {shown}")


def run_shard(bundle: ModelBundle, dataset: Any, config: EvaluationConfig, out: str, resume: bool,
              process: Process, show_progress: bool, curves: bool = True,
              games: Optional[Dict[str, Any]] = None) -> int:
    """Evaluates this rank's share of the examples not yet complete; returns how many
    (``curves``, ``games``: as :func:`evaluate_example` takes them)."""
    examples = selected_examples(dataset, config)
    done = set(complete_blocks(out)) if resume else set()
    remaining = [e for e in examples if e.example_id not in done]
    mine = [e for e in process.shard(examples) if e.example_id not in done]
    writer = RecordWriter(out, process.rank, settings=settings_fingerprint(config))
    try:
        with _progress(len(remaining), process, show_progress) as bar:
            for example in mine:
                writer.write_example(example.example_id, evaluate_example(bundle, example, config, out, curves, games))
                # the other ranks advance at about the same pace: one bar for the run
                bar.update(min(process.world_size, bar.total - bar.n))
    finally:
        writer.close()
    return len(mine)


def completeness_curves(bundle: ModelBundle, dataset: Any, config: EvaluationConfig,
                        show_progress: bool = False) -> Dict[str, Dict[str, Sequence[float]]]:
    """Median (and quartiles) of BII's relative completeness error over the first
    examples for each quadrature and number of nodes (the paper's Appendix D).

    The error of a rule needs the sum of ``A`` only: the whole caption as one group
    (``feature_mask``) gives it from one JVP and two VJPs per node -- the number the full
    matrix sums to at the same nodes -- instead of two passes per token."""
    import numpy as np
    from tqdm.auto import tqdm

    from captum_bilinear import BilinearIntegratedInteractions
    from captum_bilinear.datasets.prepare import move_to, prepare_example

    examples = dataset.examples[: config.completeness_examples]
    bii = BilinearIntegratedInteractions(bundle.model, bundle.layers)
    pairs = []
    for example in examples:
        prepared = move_to(prepare_example(example, bundle.tokenizer, bundle.image_processor, bundle.patch_size,
                                           config.fit, config.min_box_patches), bundle.device)
        _, pixel_values, image_extra = model_image(bundle, prepared.pixel_values)
        pairs.append(((prepared.input_ids, pixel_values), ((prepared.attention_mask,), image_extra)))
    rules = [(method, [n for n in config.completeness_steps if not (method.startswith("riemann") and n < 2)])
             for method in COMPLETENESS_METHODS]
    curves: Dict[str, Dict[str, Sequence[float]]] = {}
    with tqdm(total=len(pairs) * sum(len(steps) for _, steps in rules), desc="completeness curves", unit="rule",
              disable=not show_progress) as bar:
        for method, usable in rules:
            errors = np.zeros((len(pairs), len(usable)))
            for row, (inputs, extra) in enumerate(pairs):
                identity = bii.similarity_terms(inputs, additional_forward_args=extra).interaction.abs().item()
                caption = torch.zeros(inputs[0].shape[1], dtype=torch.long)  # one group: the passes of one token
                for column, n_steps in enumerate(usable):
                    _, delta = bii.attribute(inputs, additional_forward_args=extra, n_steps=n_steps, method=method,
                                             feature_mask=(caption, None), return_convergence_delta=True)
                    errors[row, column] = abs(delta.item()) / max(identity, 1e-12)
                    bar.update(1)
            curves[method] = {"n_steps": usable, "median": np.median(errors, axis=0).tolist(),
                              "q25": np.percentile(errors, 25, axis=0).tolist(),
                              "q75": np.percentile(errors, 75, axis=0).tolist()}
    return curves


def per_layer_specs(bundle: ModelBundle) -> List[LayerSpec]:
    """The embeddings and every encoder layer."""
    return ["embeddings", *range(bundle.n_layers)]


def _per_layer_runs(bundle: ModelBundle, dataset: Any, config: EvaluationConfig, out: str, resume: bool,
                    process: Process, show_progress: bool) -> Dict[str, Any]:
    """The gradient methods at every layer on the first ``per_layer_scenes`` examples,
    each layer a run of its own under ``out/per_layer/`` (records, resumable). Only what
    the table shows is computed: no insertion / deletion curves, and each example's
    p-faithfulness game (the model's, the same at every layer) played once."""
    from captum_bilinear.evaluation.summary import summarize_methods

    methods = [name for name in config.method_names if name in GRADIENT_METHODS] or [
        name for name in GRADIENT_METHODS if name not in unsupported_methods(bundle)]
    table: Dict[str, Any] = {}
    games: Dict[str, Any] = {}
    for spec in per_layer_specs(bundle):
        layer_config = EvaluationConfig(**{**asdict(config), "layer": spec, "methods": methods,
                                           "limit": config.per_layer_scenes, "per_layer_scenes": 0,
                                           "completeness_examples": 0, "keep_terms": False})
        layer_out = os.path.join(out, "per_layer", f"layer-{spec}")
        os.makedirs(layer_out, exist_ok=True)
        _check_out(layer_out, layer_config, resume, process)
        run_shard(bundle.with_layer(spec), dataset, layer_config, layer_out, resume, process, show_progress,
                  curves=False, games=games)
        process.barrier()
        if process.is_main:
            table[str(spec)] = summarize_methods(_selected_blocks(layer_out, dataset, layer_config), methods)
    return {"examples": config.per_layer_scenes, "methods": methods, "layers": table}


def _gallery(bundle: ModelBundle, dataset: Any, objects: List[Dict[str, Any]], config: EvaluationConfig,
             out: str) -> Optional[str]:
    """The failure gallery of BII (else the first interaction method), if it has failures."""
    from captum_bilinear.evaluation.report import write_gallery
    from captum_bilinear.images import fit_image

    interaction = [m for m in config.method_names if EVALUATION_METHODS[m].order == 2]
    if not interaction:
        return None
    method = "BilinearIntegratedInteractions" if "BilinearIntegratedInteractions" in interaction else interaction[0]
    failures = [r for r in objects if r["method"] == method and "image_map" in r]
    by_id = dataset.by_id()

    def display(example_id: str) -> Any:
        return fit_image(by_id[example_id].image(), bundle.image_processor, config.fit).display

    name = "failures.png"
    return name if write_gallery(failures, display, os.path.join(out, name), method) else None


def _model_entry(bundle: ModelBundle, config: EvaluationConfig, skipped: Dict[str, str]) -> Dict[str, Any]:
    entry: Dict[str, Any] = {"name": bundle.name, "layer": bundle.layer,
                             "layer_modules": [type(m).__name__ for m in bundle.layers]}
    if bundle.is_demo:  # measured when it was trained (the same every run: read, not recomputed)
        if bundle.naflex:
            from captum_bilinear.zoo.siglip2 import siglip2_settings as trained_settings
        else:
            from captum_bilinear.zoo import demo_settings as trained_settings

        entry["retrieval_top1"] = trained_settings()["retrieval_top1_32_mean_of_8"]
        entry["retrieval_protocol"] = ("caption->image top-1 among 32 held-out scenes naming every object, "
                                       "mean of 8 galleries (python -m captum_bilinear.zoo.train)")
    if skipped:
        entry["skipped_methods"] = dict(skipped)
    return entry


def applicable_methods(bundle: ModelBundle, config: EvaluationConfig) -> Dict[str, str]:
    """Drops from ``config.methods`` those that cannot explain the model, with a warning
    naming each and why (``ValueError`` if none is left, before any example); returns
    them with their reasons (``results.json["model"]["skipped_methods"]``)."""
    reasons = {name: reason for name, reason in unsupported_methods(bundle).items() if name in config.method_names}
    for name, reason in reasons.items():
        warnings.warn(f"{name} is skipped for {bundle.name}: {reason}", UserWarning, stacklevel=2)
    config.methods = [name for name in config.method_names if name not in reasons]
    if not config.methods:
        raise ValueError(f"methods: none of them can explain {bundle.name} ({'; '.join(reasons.values())})")
    return reasons


def run_evaluation(
    n_scenes: int = 300,
    seed: int = 0,
    out: str = "evaluation",
    methods: Optional[Sequence[str]] = None,
    n_steps: Union[int, str] = "auto",
    layer: Optional[LayerSpec] = None,
    completeness_scenes: int = 10,
    completeness_steps: Sequence[int] = COMPLETENESS_STEPS,
    show_progress: bool = True,
    *,
    dataset: str = "demo",
    resume: bool = False,
    device: Optional[str] = None,
    **options: Any,
) -> Dict[str, Any]:
    """Runs every method on a dataset and writes ``out/records/``, ``out/results.json``,
    ``out/report.md`` and the plots; returns the results (on rank 0; ``{}`` elsewhere).

    Args:
        n_scenes: the demo world's number of held-out scenes.
        seed: scene stream, the sampling methods' random state and the coalitions.
        out: output directory (created).
        methods: short names (``bii``, ``icam``, ``ilime``, ``itsm``, ``itsm-o``,
            ``fixlip``, ``lig``, ``gradcam``) or full names (default: all).
        n_steps: BII's quadrature nodes, or ``"auto"`` (with ``tolerance=``).
        layer: ``"embeddings"`` or an encoder layer index for every method that takes a
            layer (default: the model's default).
        completeness_scenes: examples of the completeness-error-vs-n_steps plot.
        completeness_steps: the n_steps of that plot.
        show_progress: a progress bar (rank 0).
        dataset: ``"demo"``, ``"coco"``, ``"flickr30k-entities"`` or ``"hnc"``.
        resume: continue the run in ``out``: skip the examples whose records are complete.
        device: where the model runs (default: the local GPU, else the CPU).
        **options: the other fields of :class:`EvaluationConfig` (``images``,
            ``captions``, ``instances``, ``root``, ``split``, ``annotations``,
            ``synonyms``, ``model``, ``tolerance``, ``limit``, ``per_layer_scenes``, ...).

    Returns:
        The content of ``results.json``.

    Example:
        >>> import tempfile
        >>> results = run_evaluation(1, out=tempfile.mkdtemp(), methods=["icam"], show_progress=False,
        ...                          completeness_scenes=0)
        >>> sorted(results["methods"]["InteractionCAM"])[:3]
        ['CID', 'CII', 'CTD']
    """
    config = EvaluationConfig(dataset=dataset, scenes=n_scenes, seed=seed, methods=list(methods) if methods else None,
                              n_steps=n_steps, layer=layer, completeness_examples=completeness_scenes,
                              completeness_steps=tuple(completeness_steps), **options)
    config.validate()
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a directory path, got {type(out).__name__}")
    out = os.fspath(out)
    if not out:
        raise ValueError("out: expected a directory path, got ''")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out: {out} is a file; expected a directory (created if missing)")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        raise ValueError(f"out: cannot create {out} ({error.strerror or type(error).__name__})") from error
    # Every input check before the model is loaded: the dataset's files, its images, the
    # state of --out.
    data = load_dataset(config)
    check_usable(data, config)
    read_run_file(out)
    process = current_process(device)
    try:
        started = time.perf_counter()
        bundle = load_bundle(config.model, config.layer, str(process.device))
        config.layer = bundle.layer
        skipped = applicable_methods(bundle, config)
        _check_out(out, config, resume, process)
        run_shard(bundle, data, config, out, resume, process, show_progress)
        process.barrier()
        per_layer = (_per_layer_runs(bundle, data, config, out, resume, process, show_progress)
                     if config.per_layer_scenes else None)
        if not process.is_main:
            return {}
        from captum_bilinear.evaluation.report import write_report
        from captum_bilinear.evaluation.summary import summarize

        curves = (completeness_curves(bundle, data, config, show_progress) if config.completeness_examples > 0
                  else {})
        # what this run's settings select (a resumed run with a smaller --limit leaves
        # records of further pairs on disk; the tables are of the selected ones)
        blocks = _selected_blocks(out, data, config)
        results = summarize(blocks, config.method_names)
        results = {
            "model": _model_entry(bundle, config, skipped),
            "dataset": {"name": data.name, **results.pop("dataset"), "source": data.source,
                        "statistics": data.statistics, "dropped_in_the_model": _dropped_in_the_model(blocks)},
            "settings": {
                "scenes": config.scenes if data.name == "demo" else None, "seed": config.seed,
                "n_steps": config.n_steps, "tolerance": config.tolerance,
                "lig_n_steps": config.n_steps if isinstance(config.n_steps, int) else LIG_STEPS_WITH_AUTO, "p": 0.5,
                "n_coalitions": 256, "faithfulness_examples": config.faithfulness_examples,
                "limit": config.limit, "fit": config.fit,
                "min_box_patches": config.min_box_patches, "processes": process.world_size,
                "named_objects": results["objects"], "seconds": time.perf_counter() - started,
                "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            },
            **{k: v for k, v in results.items() if k != "objects"},
            "completeness": curves,
        }
        if per_layer is not None:
            results["per_layer"] = per_layer
        if not results["dataset"].get("objects"):
            dropped = _dropped(results["dataset"]["dropped_in_the_model"])
            warnings.warn(f"dataset: no named object of the {results['dataset'].get('examples', 0)} pair(s) survived "
                          f"the mapping into the model (dropped: {dropped}), so the object metrics (pointing game, "
                          "insertion / deletion) are empty", UserWarning, stacklevel=2)
        with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1, allow_nan=True)
        objects = [r for records in blocks.values() for r in records if r.get("kind") == "object"]
        energies = {m: [r["PGE"] for r in objects if r["method"] == m] for m in config.method_names}
        gallery = _gallery(bundle, data, objects, config, out)
        write_report(results, out, energies, gallery)
        from captum_bilinear.evaluation.pages import write_pair_pages, write_report_html

        evaluated = [EVALUATION_METHODS[name] for name in config.method_names]
        write_report_html(results, out, objects, evaluated, gallery, write_pair_pages(out, evaluated, objects))
        return results
    finally:
        process.close()
