"""`evaluate` refuses what it cannot do right, before the model is loaded, in one line:
a dataset with no usable pair (with the counts of what was dropped and why), missing
image files (all at once), a damaged or missing run.json next to records; and a resumed
run's tables summarise exactly the pairs its settings select."""

import json
import os

import pytest
import torch

from captum_bilinear.cli import main
from captum_bilinear.evaluation import run_evaluation
from captum_bilinear.evaluation.records import complete_blocks

FAST = dict(methods=["itsm-o"], completeness_scenes=0, show_progress=False)


def _one_line_error(capsys, status):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 2 and len(err) == 1, err
    return err[0]


def test_resume_with_another_limit_summarises_what_its_settings_say(tmp_path):
    out = str(tmp_path / "run")
    first = run_evaluation(3, seed=4, out=out, limit=3, **FAST)
    assert first["dataset"]["examples"] == 3 and first["settings"]["limit"] == 3
    again = run_evaluation(3, seed=4, out=out, limit=1, resume=True, **FAST)
    assert again["settings"]["limit"] == 1
    assert again["dataset"]["examples"] == 1  # not the 3 pairs on disk
    assert len(complete_blocks(out)) == 3  # nothing deleted
    with open(os.path.join(out, "results.json")) as handle:
        assert json.load(handle)["dataset"]["examples"] == 1


def test_resume_without_run_json_does_not_merge_another_seed(tmp_path, capsys):
    out = str(tmp_path / "run")
    run_evaluation(2, seed=0, out=out, limit=1, **FAST)
    os.remove(os.path.join(out, "run.json"))
    arguments = ["evaluate", "--scenes", "2", "--methods", "itsm-o", "--completeness-examples", "0", "--no-progress",
                 "--out", out, "--resume"]
    line = _one_line_error(capsys, main(arguments + ["--seed", "1"]))
    assert "--resume: " in line and "records made with other settings" in line
    assert main(arguments + ["--seed", "0"]) == 0  # the same settings: the records vouch for themselves
    assert len(complete_blocks(out)) == 2
    assert "Loading weights" not in capsys.readouterr().err  # transformers' bars obey --no-progress too


def test_a_damaged_run_json_is_named(tmp_path, capsys):
    out = tmp_path / "run"
    run_evaluation(1, seed=0, out=str(out), **FAST)
    (out / "run.json").write_text('{"config": {"dataset": "demo"')  # cut short
    line = _one_line_error(capsys, main(["evaluate", "--scenes", "1", "--methods", "itsm-o", "--out", str(out),
                                         "--resume", "--no-progress", "--completeness-examples", "0"]))
    assert f"--out: {out / 'run.json'} is damaged" in line


def _coco(tmp_path, instances, captions, images=("a.png",)):
    from PIL import Image

    (tmp_path / "images").mkdir()
    for name in images:
        Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "images" / name)
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    return _arguments(tmp_path)


def test_the_old_documented_coco_layout_is_an_error_with_the_counts(tmp_path, capsys):
    """The layout docs/evaluate_your_data gave (instances without "images") evaluated 0
    pairs and exited with 0."""
    captions = {"annotations": [{"id": 1, "image_id": 1, "caption": "a red circle"},
                                {"id": 2, "image_id": 1, "caption": "a circle in red"}]}
    instances = {"categories": [{"id": 1, "name": "circle"}],
                 "annotations": [{"image_id": 1, "category_id": 1, "bbox": [8, 8, 40, 40], "iscrowd": 0}]}
    line = _one_line_error(capsys, main(_coco(tmp_path, instances, captions)))
    assert line.startswith("captum-bilinear evaluate: error: --instances: ") and 'has no "images"' in line
    instances["images"] = []  # present, but without this image
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    line = _one_line_error(capsys, main(_arguments(tmp_path)))
    assert "--dataset: no usable image-caption pair in the coco files: 2 caption(s) read" in line
    assert "2 captions whose image is in neither file's images" in line
    assert not (tmp_path / "run" / "records").exists()


def _arguments(tmp_path):
    return ["evaluate", "--dataset", "coco", "--images", str(tmp_path / "images"), "--captions",
            str(tmp_path / "captions.json"), "--instances", str(tmp_path / "instances.json"), "--methods", "itsm-o",
            "--completeness-examples", "0", "--no-progress", "--out", str(tmp_path / "run")]


def test_missing_images_are_all_named_before_any_pair_runs(tmp_path, capsys):
    images = [{"id": k, "file_name": f"{k}.png"} for k in (1, 2, 3)]
    captions = {"annotations": [{"id": k, "image_id": k, "caption": "a red circle"} for k in (1, 2, 3)]}
    instances = {"images": images, "categories": [{"id": 1, "name": "circle"}],
                 "annotations": [{"image_id": k, "category_id": 1, "bbox": [8, 8, 40, 40]} for k in (1, 2, 3)]}
    line = _one_line_error(capsys, main(_coco(tmp_path, instances, captions, images=("1.png",))))
    assert "--images: 2 image file(s) of the selected pairs are missing: " in line
    assert "2.png" in line and "3.png" in line
    assert not (tmp_path / "run" / "records").exists()  # found before the first pair, not when it was reached


def test_seeds_outside_what_the_run_can_derive_from_are_named(tmp_path, capsys):
    """--seed 2**45 overflowed the per-example seeds deep in a run; a negative one selects
    another stream of scenes (-12346 the demo model's training stream)."""
    for seed in ("35184372088832", "-12346"):
        line = _one_line_error(capsys, main(["evaluate", "--scenes", "1", "--seed", seed, "--methods", "itsm-o",
                                             "--out", str(tmp_path / "run"), "--no-progress"]))
        assert f"--seed: expected an int in [0, 2**32), got {seed}" in line
    from captum_bilinear import InteractionLIME
    from captum_bilinear.zoo import load_demo_model

    model = load_demo_model()[0]
    with pytest.raises(ValueError, match=r"random_state: \d+ is too large for a seed"):
        InteractionLIME(model, (model.text_model.embeddings, model.vision_model.embeddings)).attribute(
            (torch.tensor([[49406, 320, 49407]]), torch.zeros(1, 3, 64, 64)), n_samples=400, random_state=2**70)


def test_a_run_whose_objects_all_drop_in_the_model_says_so(tmp_path):
    """A box wholly outside its image: the pair runs (its pair-level metrics are defined),
    no object is scored, and the run ended with exit 0 and nothing said."""
    images = [{"id": 1, "file_name": "a.png"}]
    captions = {"annotations": [{"id": 1, "image_id": 1, "caption": "a red circle"}]}
    instances = {"images": images, "categories": [{"id": 1, "name": "circle"}],
                 "annotations": [{"image_id": 1, "category_id": 1, "bbox": [100, 8, 40, 40]}]}
    _coco(tmp_path, instances, captions)
    with pytest.warns(UserWarning, match=r"dataset: no named object of the 1 pair\(s\) survived the mapping into the "
                                         r"model \(dropped: 1 object box outside the image\)"):
        results = run_evaluation(out=str(tmp_path / "run"), dataset="coco", images=str(tmp_path / "images"),
                                 captions=str(tmp_path / "captions.json"), instances=str(tmp_path / "instances.json"),
                                 **FAST)
    assert results["dataset"]["objects"] == 0
    assert results["dataset"]["dropped_in_the_model"] == {"object box outside the image": 1}


def test_out_that_is_a_file_and_negative_counts_are_named_with_their_flags(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    base = ["evaluate", "--scenes", "1", "--methods", "itsm-o", "--no-progress"]
    line = _one_line_error(capsys, main(base + ["--out", str(tmp_path / "file")]))
    assert f"--out: {tmp_path / 'file'} is a file; expected a directory" in line  # was "[Errno 17] File exists"
    line = _one_line_error(capsys, main(base + ["--out", str(tmp_path / "run"), "--per-layer-scenes", "-2"]))
    assert "--per-layer-scenes: expected a non-negative int, got -2" in line


def test_undecodable_bytes_in_a_records_file_are_a_damaged_line_not_a_crash(tmp_path):
    """A records file with bytes that are not UTF-8 stopped every later read with
    "'utf-8' codec can't decode byte 0xff", naming no file."""
    out = tmp_path / "run"
    run_evaluation(2, seed=0, out=str(out), limit=1, **FAST)
    (out / "records" / "damaged.jsonl").write_bytes(b'\xff\xfe garbage\n{"kind": "done", "block": 1}\n')
    results = run_evaluation(2, seed=0, out=str(out), resume=True, **FAST)
    assert results["dataset"]["examples"] == 2 and len(complete_blocks(str(out))) == 2


def _without_timings(table):
    """The table as JSON (NaN equal to NaN), without its timings."""
    return json.dumps({layer: {method: {k: v for k, v in values.items() if k != "seconds_per_pair"}
                               for method, values in methods.items()} for layer, methods in table["layers"].items()},
                      sort_keys=True)


def test_a_resumed_per_layer_table_is_of_the_pairs_its_settings_select(tmp_path):
    options = dict(methods=["icam"], completeness_scenes=0, show_progress=False)
    run_evaluation(2, seed=3, out=str(tmp_path / "a"), per_layer_scenes=2, **options)
    resumed = run_evaluation(2, seed=3, out=str(tmp_path / "a"), per_layer_scenes=1, resume=True, **options)
    fresh = run_evaluation(2, seed=3, out=str(tmp_path / "b"), per_layer_scenes=1, **options)
    assert resumed["per_layer"]["layers"]["0"]["InteractionCAM"]["examples"] == 1  # not the 2 pairs on disk
    assert _without_timings(resumed["per_layer"]) == _without_timings(fresh["per_layer"])


def test_an_out_that_cannot_be_created_is_named_with_its_flag(tmp_path, capsys):
    """``--out ""`` and an --out under a file said "[Errno 2] No such file or directory: ''" /
    "[Errno 20] Not a directory", naming no flag."""
    (tmp_path / "file").write_text("x")
    base = ["evaluate", "--scenes", "1", "--methods", "itsm-o", "--no-progress"]
    line = _one_line_error(capsys, main(base + ["--out", ""]))
    assert "--out: expected a directory path, got ''" in line
    line = _one_line_error(capsys, main(base + ["--out", str(tmp_path / "file" / "run")]))
    assert f"--out: cannot create {tmp_path / 'file' / 'run'} (Not a directory)" in line
