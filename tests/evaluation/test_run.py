"""A small `captum-bilinear evaluate` run on the demo world: the files it writes, its
records against the previous implementation's values and against metrics computed here,
the dataset paths, bad input."""

import json
import math
import os

import pytest

from captum_bilinear.cli import main
from captum_bilinear.evaluation import run_evaluation
from captum_bilinear.evaluation.records import complete_blocks, read_records

FAST = ["icam", "itsm-o", "itsm", "gradcam", "lig", "bii"]
NAMES = ["InteractionCAM", "ITSM-O", "ITSM-H", "LayerGradCam", "LayerIntegratedGradients",
         "BilinearIntegratedInteractions"]
KEYS = ("PGA", "mPGE", "CID", "CII", "CTD", "CTI", "p_faithfulness", "seconds_per_pair")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    results = run_evaluation(1, seed=1, out=str(out), methods=FAST, n_steps=4, completeness_scenes=1,
                             completeness_steps=(1, 8), show_progress=False)
    return out, results


@pytest.fixture(scope="module")
def per_layer_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("per_layer")
    results = run_evaluation(1, seed=1, out=str(out), methods=["icam", "itsm-o"], completeness_scenes=0,
                             show_progress=False, per_layer_scenes=1)
    return out, results


def test_writes_records_results_report_and_plots(small_run):
    out, results = small_run
    for name in ("results.json", "report.md", "completeness.png", "curves.png", "pge.png", "run.json"):
        assert os.path.getsize(out / name) > 0, name
    with open(out / "results.json") as handle:
        assert json.load(handle)["dataset"]["name"] == "demo"
    assert list(results["methods"]) == NAMES
    assert results["model"]["layer"] == "embeddings" and 0.0 <= results["model"]["retrieval_top1"] <= 1.0
    objects = read_records(str(out), "object")
    assert len(objects) == results["dataset"]["objects"] * len(NAMES)
    assert {"example_id", "method", "object", "PGA", "PGE", "CID", "CII"} <= set(objects[0])
    report = (out / "report.md").read_text()
    for name in NAMES:
        assert f"| {name} |" in report
    # report.html beside it, the same tables; no pair's terms kept: it says how to keep them
    page = (out / "report.html").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"<th>{name}</th>" in page
    assert "--keep-terms" in page and "pages/" not in page
    assert not (out / "terms").exists() and not (out / "pages").exists()


def test_figures_are_in_range(small_run):
    _, results = small_run
    for name, values in results["methods"].items():
        assert set(KEYS) <= set(values), name
        assert 0.0 <= values["PGA"] <= 1.0 and 0.0 <= values["mPGE"] <= 1.0, name
        assert values["seconds_per_pair"] > 0, name
        assert -1.0 <= values["p_faithfulness"] <= 1.0, name
        text_side = values["CTD"], values["CTI"]
        if name == "LayerGradCam":  # no text-side layer for Captum's GradCAM
            assert all(math.isnan(v) for v in text_side)
        else:
            assert all(-1.0 <= v <= 1.0 for v in text_side), name
    median = results["completeness"]["gausslegendre"]["median"]
    assert median[-1] < median[0]


def test_a_per_layer_run_scores_a_layer_as_a_run_at_that_layer_alone(per_layer_run, tmp_path):
    """The per-layer runs play each example's p-faithfulness game once (at the first
    layer, the embeddings) and reuse it: at layer 2 their records equal those of a run of
    its own at layer 2, which plays the game itself."""
    out, _ = per_layer_run
    run_evaluation(1, seed=1, out=str(tmp_path), methods=["icam"], completeness_scenes=0, show_progress=False,
                   layer=2)
    keys = ("PGA", "PGE", "p_faithfulness", "p_faithfulness_r2", "own_positive", "delta_S", "delta_A")

    def values(directory):
        (records,) = complete_blocks(str(directory)).values()
        return [(r["kind"], {k: r[k] for k in keys if k in r}) for r in records if r.get("method") == "InteractionCAM"]

    alone, in_table = values(tmp_path), values(out / "per_layer" / "layer-2")
    assert [kind for kind, _ in alone] == [kind for kind, _ in in_table] and "negative" in dict(alone)
    for (_, expected), (_, got) in zip(alone, in_table):
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert "p_faithfulness" in dict(in_table)["example"]


def test_per_layer_table_agrees_with_the_main_run(per_layer_run):
    """The per-layer run at the main run's layer (the demo model's default, the embeddings)
    gives the main run's values, and there the pointing game of InteractionCAM computed
    here from the method itself."""
    from captum_bilinear import InteractionCAM
    from captum_bilinear.datasets import demo_dataset, prepare_example
    from captum_bilinear.metrics import pointing_game
    from captum_bilinear.selection import span_image_map
    from captum_bilinear.zoo import load_demo_model

    out, results = per_layer_run
    layers = results["per_layer"]["layers"]
    assert list(layers) == ["embeddings", "0", "1", "2", "3", "4", "5"]
    assert results["per_layer"]["methods"] == ["InteractionCAM"]  # of the run's methods, those that take a layer
    assert "## Per layer" in (out / "report.md").read_text()
    (example_id,) = complete_blocks(str(out))
    main_records = [r for r in complete_blocks(str(out))[example_id] if r["kind"] == "object"
                    and r["method"] == "InteractionCAM"]
    assert results["model"]["layer"] == "embeddings"
    at_default = [r for r in complete_blocks(str(out / "per_layer" / "layer-embeddings"))[example_id]
                  if r["kind"] == "object"]
    assert [(r["PGA"], r["PGE"]) for r in main_records] == [(r["PGA"], r["PGE"]) for r in at_default]
    # the table shows no curves: the per-layer runs compute none (the main run does)
    assert all("CID" in r and "CTD" in r for r in main_records)
    assert not any(key in r for r in at_default for key in ("CID", "CII", "CTD", "CTI"))
    model, tokenizer, processor = load_demo_model()
    prepared = prepare_example(demo_dataset(1, seed=1)[0], tokenizer, processor, patch_size=8)
    A = InteractionCAM(model, (model.text_model.embeddings, model.vision_model.embeddings)).attribute(
        (prepared.input_ids, prepared.pixel_values), additional_forward_args=((prepared.attention_mask,), None))
    energies = [pointing_game(span_image_map(A[0], o.span), o.box, (64, 64)).energy for o in prepared.objects]
    assert layers["embeddings"]["InteractionCAM"]["mPGE"] == pytest.approx(sum(energies) / len(energies), abs=1e-6)


# Main's evaluation before InteractionTerms and the records (commit a9a5598, the code of
# the committed 300-scene table) on scenes 0 and 1 of seed 0 at layer 3:
# (scene, method, object) -> (PGA, PGE, CID, CTD).
PREVIOUS = {
    (0, "InteractionCAM", 0): (0.0, 0.0, 0.4834336689673364, 0.4200626239180565),
    (0, "ITSM-O", 0): (0.0, 0.022237410145812805, 0.4412233941257, 0.41603773459792137),
    (0, "LayerGradCam", 0): (0.0, 0.0, 0.4390921499580145, None),
    (1, "InteractionCAM", 0): (1.0, 0.7466164800152282, 0.6039180690422654, 0.6288669237068721),
    (1, "ITSM-O", 0): (0.0, 0.024079953670137905, 0.6251866146922112, 0.5180592579501015),
    (1, "LayerGradCam", 0): (1.0, 0.03230120078204916, 0.6281737270765007, None),
}


def test_records_equal_the_previous_implementation(tmp_path):
    run_evaluation(2, seed=0, out=str(tmp_path), methods=["icam", "itsm-o", "gradcam"], completeness_scenes=0,
                   show_progress=False, layer=3)
    found = {}
    for record in read_records(str(tmp_path), "object"):
        scene = int(record["example_id"].split("-")[1])
        found[(scene, record["method"], record["object"])] = (record["PGA"], record["PGE"], record["CID"],
                                                              record.get("CTD"))
    assert found.keys() == PREVIOUS.keys()
    for key, values in PREVIOUS.items():
        assert (found[key][3] is None) == (values[3] is None), key
        ours = [v for v in found[key] if v is not None]
        # float32 round-off differs between CPUs' kernels (3.7e-8 seen), not between implementations
        assert ours == pytest.approx([v for v in values if v is not None], abs=1e-6), key


def test_same_seed_reproduces_the_records(tmp_path):
    """InteractionLIME samples: the same seed gives the same table."""
    first = run_evaluation(2, seed=1, out=str(tmp_path / "a"), methods=["ilime"], completeness_scenes=0,
                           show_progress=False)
    again = run_evaluation(2, seed=1, out=str(tmp_path / "b"), methods=["ilime"], completeness_scenes=0,
                           show_progress=False, limit=2)
    for key in KEYS[:-1]:
        assert first["methods"]["InteractionLIME"][key] == pytest.approx(again["methods"]["InteractionLIME"][key],
                                                                         rel=1e-6, abs=1e-9, nan_ok=True)


def test_unknown_method_is_refused(tmp_path, capsys):
    assert main(["evaluate", "--scenes", "1", "--out", str(tmp_path), "--methods", "GradCAM++"]) == 2
    assert "methods: unknown ['GradCAM++']" in capsys.readouterr().err


def test_missing_dataset_paths_are_named(tmp_path, capsys):
    assert main(["evaluate", "--dataset", "coco", "--out", str(tmp_path), "--images", str(tmp_path)]) == 2
    assert "--captions, --instances: required for --dataset coco" in capsys.readouterr().err


def test_a_second_run_into_the_same_directory_needs_resume(small_run, capsys):
    out, _ = small_run
    assert main(["evaluate", "--scenes", "2", "--seed", "1", "--out", str(out), "--methods", "icam"]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_layer_embeddings_and_auto_steps(tmp_path, capsys):
    """--layer embeddings reaches results.json; --n-steps auto meets its tolerance on every
    record; an impossible tolerance is refused before any work."""
    results = run_evaluation(1, seed=2, out=str(tmp_path / "a"), methods=["icam"], layer="embeddings",
                             completeness_scenes=0, show_progress=False)
    assert results["model"]["layer"] == "embeddings"
    assert results["model"]["layer_modules"] == ["CLIPTextEmbeddings", "CLIPVisionEmbeddings"]
    assert "at the embeddings layers" in (tmp_path / "a" / "report.md").read_text()
    arguments = ["evaluate", "--scenes", "1", "--methods", "bii", "--n-steps", "auto", "--tolerance", "0.01",
                 "--completeness-examples", "0", "--no-progress", "--out", str(tmp_path / "b")]
    assert main(arguments) == 0
    with open(tmp_path / "b" / "results.json") as handle:
        results = json.load(handle)
    assert results["settings"]["n_steps"] == "auto" and results["settings"]["tolerance"] == 0.01
    records = [json.loads(line) for path in (tmp_path / "b" / "records").iterdir() for line in path.open()]
    assert records and all(record["completeness_error"] <= 0.01 for record in records if "completeness_error" in record)
    assert main(arguments[:-2] + ["--tolerance", "2", "--out", str(tmp_path / "c")]) == 2
    assert "tolerance" in capsys.readouterr().err


def _object_records_on_disk(out):
    """The object records of a run's files, in file order, read with json alone."""
    records = []
    for path in sorted((out / "records").glob("*.jsonl")):
        with open(path) as handle:
            records += [r for r in map(json.loads, handle) if r["kind"] == "object"]
    return records


def test_class_wise_pge_is_the_records_per_category(small_run):
    """results.json's class-wise PGE against counts, means and medians computed here."""
    import statistics

    out, _ = small_run
    with open(out / "results.json") as handle:
        table = json.load(handle)["analyses"]["class_wise_PGE"]
    records = _object_records_on_disk(out)
    assert sorted(table) == sorted(NAMES)
    for method in NAMES:
        rows = {}
        for record in records:
            if record["method"] == method:
                rows.setdefault(record["category"], []).append(record)
        assert set(table[method]) == set(rows) == {"cross", "star"}  # seed 1's scene 0: a cross and two stars
        for category, group in rows.items():
            pge = [r["PGE"] for r in group]
            assert table[method][category]["count"] == len(group)
            assert table[method][category]["mPGE"] == pytest.approx(sum(pge) / len(pge), abs=1e-12)
            assert table[method][category]["median_PGE"] == pytest.approx(statistics.median(pge), abs=1e-12)
            assert table[method][category]["PGA"] == pytest.approx(sum(r["PGA"] for r in group) / len(group))
        assert list(table[method]) == ["star", "cross"]  # most frequent first
        pge = [r["PGE"] for r in records if r["method"] == method]
        summary = small_run[1]["methods"][method]
        assert summary["median_PGE"] == pytest.approx(statistics.median(pge), abs=1e-12)
        assert summary["share_PGE_above_0.8"] == pytest.approx(sum(v > 0.8 for v in pge) / len(pge))


def test_significance_is_deepsig_aso_on_the_records(small_run):
    """The significance pairs: BII against every other method both ways, each deepsig.aso
    called here on the two methods' PGE (confidence 0.95, the same bootstrap iterations --
    100 here, 1000 in runs -- seed 0), from records of 20 objects a method; the small run's
    2 objects are too few for the test and say so."""
    import numpy as np
    from deepsig import aso

    from captum_bilinear.evaluation.summary import significance

    out, _ = small_run
    with open(out / "results.json") as handle:
        small = json.load(handle)["analyses"]["significance"]["pairs"]
    assert small and all(math.isnan(p["epsilon_min"]) and p["note"] == "fewer than 20 scores" for p in small)
    generator = np.random.default_rng(0)
    scores = {"BilinearIntegratedInteractions": generator.beta(5, 2, 20), "InteractionCAM": generator.beta(2, 3, 24)}
    records = [{"kind": "object", "method": m, "PGE": float(v)} for m, values in scores.items() for v in values]
    pairs = significance(records, list(scores), iterations=100)
    reference = "BilinearIntegratedInteractions"
    assert sorted((p["a"], p["b"]) for p in pairs) == sorted(
        [(reference, m) for m in scores if m != reference] + [(m, reference) for m in scores if m != reference])
    for pair in pairs:
        expected = aso(scores[pair["a"]].tolist(), scores[pair["b"]].tolist(), confidence_level=0.95,
                       num_bootstrap_iterations=100, show_progress=False, seed=0)
        assert pair["epsilon_min"] == pytest.approx(expected, abs=1e-9), (pair["a"], pair["b"])
    assert pairs[0]["epsilon_min"] < 0.5  # BII's PGE here is drawn from a larger distribution


def test_failure_gallery_gets_exactly_the_objects_below_0_2(small_run, monkeypatch, tmp_path):
    """The gallery is drawn from BII's objects with PGE < 0.2 (read from the records here),
    all of them and no other; failures.png exists exactly when there are some."""
    import numpy as np

    from captum_bilinear.datasets import demo_dataset
    from captum_bilinear.evaluation import report
    from captum_bilinear.evaluation.bundle import load_bundle
    from captum_bilinear.evaluation.run import EvaluationConfig, _gallery

    out, _ = small_run
    records = _object_records_on_disk(out)
    failing = [(r["example_id"], r["object"]) for r in records
               if r["method"] == "BilinearIntegratedInteractions" and r["PGE"] < 0.2]
    assert os.path.isfile(out / "failures.png") == bool(failing)
    assert ("![failure cases](failures.png)" in (out / "report.md").read_text()) == bool(failing)
    given = []
    real = report.write_gallery
    monkeypatch.setattr(report, "write_gallery", lambda failures, display, path, method, **kw: (
        given.append((method, failures, display)), real(failures, display, str(tmp_path / "g.png"), method))[1])
    config = EvaluationConfig(methods=FAST)
    config.validate()
    name = _gallery(load_bundle(None, None, "cpu"), demo_dataset(1, seed=1), records, config, str(tmp_path))
    ((method, failures, display),) = given
    assert method == "BilinearIntegratedInteractions"
    assert [(r["example_id"], r["object"]) for r in failures] == failing
    assert (name == "failures.png") == bool(failing) == os.path.isfile(tmp_path / "g.png")
    # the contact sheet on cases of its own: one drawn per case up to `most`; none, no file
    image = display("scene-00000")
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    case = {"example_id": "scene-00000", "image_map": np.ones((8, 8)).tolist(), "box": [8, 8, 24, 24],
            "phrase": "a star", "PGE": 0.1}
    assert real([case] * 5, display, str(tmp_path / "five.png"), "M", most=4) == 4
    assert os.path.getsize(tmp_path / "five.png") > 0
    assert real([], display, str(tmp_path / "none.png"), "M") == 0 and not os.path.exists(tmp_path / "none.png")


def test_bii_groups_give_the_records_of_the_whole_matrix(tmp_path):
    """Off the p-faithfulness pairs BII computes the object spans, the replaced words and
    the boxes as groups, and each hard negative's span with its box as one group each:
    at the same nodes every record equals the one from the whole matrix."""
    options = dict(methods=["bii"], completeness_scenes=0, show_progress=False, n_steps=12)
    run_evaluation(3, seed=4, out=str(tmp_path / "whole"), faithfulness_examples=None, **options)
    run_evaluation(3, seed=4, out=str(tmp_path / "groups"), faithfulness_examples=0, **options)
    for kind, key, values in (("object", "object", ("PGA", "PGE", "CID", "CII", "CTD", "CTI")),
                              ("negative", "negative", ("delta_A", "delta_S", "attribution")),
                              ("example", "method", ("own_positive", "cross_negative", "completeness_error"))):
        whole = {(r["example_id"], r[key]): r for r in read_records(str(tmp_path / "whole"), kind)}
        groups = {(r["example_id"], r[key]): r for r in read_records(str(tmp_path / "groups"), kind)}
        assert whole.keys() == groups.keys() and whole
        for name, record in whole.items():
            for value in values:
                if value in record and record[value] == record[value]:  # not nan
                    # the delta is a small difference of float32 sums: its round-off, not the quadrature's
                    rel = 1e-3 if value == "completeness_error" else 1e-5
                    assert groups[name][value] == pytest.approx(record[value], rel=rel, abs=1e-7), (name, value)
        if kind == "example":
            assert all("p_faithfulness" in r for r in whole.values())
            assert not any("p_faithfulness" in r for r in groups.values())
