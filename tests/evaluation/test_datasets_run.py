"""`evaluate` on files in the datasets' formats: COCO and Flickr30k Entities exports of
held-out demo scenes at 4x the model's resolution (written by the tests' own exporter)
find the objects the filters should find, and BII points there as in the bundled
evaluation of the same scenes with the same settings; an HNC file of demo scenes gives
the hard negatives' δS of the model computed here."""

import json
import os
import re
import sys

import pytest
import torch
from PIL import Image

from captum_bilinear.datasets import demo_dataset, demo_scenes
from captum_bilinear.evaluation import run_evaluation
from captum_bilinear.evaluation.records import read_records
from captum_bilinear.zoo import load_demo_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "datasets"))
from independent_export import SCALE, export_coco, export_flickr  # noqa: E402

N = 3
STEPS = 8  # BII's quadrature in the bundled run and the exports' runs alike


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    run_evaluation(N, seed=0, out=str(out), methods=["bii"], n_steps=STEPS, completeness_scenes=0,
                   show_progress=False)
    return read_records(str(out))


def _bundled_objects(demo_run):
    """(scene, phrase) -> (box, PGA, PGE) of BII in the bundled run."""
    return {(int(r["example_id"].split("-")[1]), r["phrase"]): (r["box"], r["PGA"], r["PGE"])
            for r in demo_run if r["kind"] == "object"}


def _assert_points_like_the_bundled_run(found, bundled):
    """``found``: (scene, phrase) -> (box, PGA, PGE) of an export's run."""
    assert set(found) <= set(bundled)
    for key, (box, hit, energy) in found.items():
        assert box == bundled[key][0], key
        assert hit == bundled[key][1], key  # the same top patch, in the box or not
        # the 256 px images come back to 64 px through the processor's bicubic resize
        assert energy == pytest.approx(bundled[key][2], abs=0.05), key


def test_flickr_export_at_4x_points_like_the_bundled_world(tmp_path, demo_run):
    scenes = demo_scenes(N, seed=0)
    root, images = export_flickr(scenes, str(tmp_path / "flickr"))
    results = run_evaluation(out=str(tmp_path / "run"), methods=["bii"], n_steps=STEPS, completeness_scenes=0,
                             show_progress=False, dataset="flickr30k-entities", root=root, images=images,
                             split="test")
    assert results["dataset"]["objects"] == sum(len(s.objects) for s in scenes)  # every named object has one box
    found = {(int(r["image_id"]) - 700000, r["phrase"]): (r["box"], r["PGA"], r["PGE"])
             for r in _object_records(tmp_path / "run")}
    assert sorted(found) == sorted((k, " ".join(o.words)) for k, s in enumerate(scenes) for o in s.objects)
    _assert_points_like_the_bundled_run(found, _bundled_objects(demo_run))
    bundled = [r["PGA"] for r in demo_run if r["kind"] == "object"]
    assert results["methods"]["BilinearIntegratedInteractions"]["PGA"] == pytest.approx(sum(bundled) / len(bundled))


def _object_records(out):
    """The object records of a run, with their example's image id (from its pair record)."""
    records = read_records(str(out))
    image_ids = {r["example_id"]: r["image_id"] for r in records if r["kind"] == "pair"}
    return [dict(r, image_id=image_ids[r["example_id"]]) for r in records if r["kind"] == "object"]


def _coco_should_find(scenes):
    """The named objects whose shape occurs once in the image (named or not) and whose shape
    word is in the caption: (scene, the object's words, its box in the model's pixels)."""
    expected = set()
    for k, scene in enumerate(scenes):
        shapes = [o.shape for o in list(scene.objects) + list(scene.unnamed_objects)]
        for obj in scene.objects:
            if shapes.count(obj.shape) == 1 and re.search(rf"\b{obj.shape}\b", scene.caption):
                expected.add((k, " ".join(obj.words), tuple(float(v) for v in obj.box)))
    return expected


def test_coco_export_at_4x_finds_the_filtered_objects_and_points_like_the_bundled_world(tmp_path, demo_run):
    """The export's category names are the shapes; a synonyms file names each shape also by
    the scenes' words for it (``"small star"``), so that the caption spans are the bundled
    world's (longer names win) and BII's maps can be compared object by object."""
    scenes = demo_scenes(N, seed=0)
    images, captions, instances = export_coco(scenes, str(tmp_path / "coco"))
    synonyms = {}
    for obj in (o for s in scenes for o in s.objects):
        synonyms.setdefault(obj.shape, {obj.shape}).add(" ".join(obj.words))
    (tmp_path / "synonyms.json").write_text(json.dumps({k: sorted(v) for k, v in synonyms.items()}))
    results = run_evaluation(out=str(tmp_path / "run"), methods=["bii"], n_steps=STEPS, completeness_scenes=0,
                             show_progress=False, dataset="coco", images=images, captions=captions,
                             instances=instances, synonyms=str(tmp_path / "synonyms.json"))
    expected = _coco_should_find(scenes)
    assert 0 < len(expected) < sum(len(s.objects) for s in scenes)  # the once-in-the-image filter drops some
    records = _object_records(tmp_path / "run")
    found = {(int(r["image_id"]) - 1000, r["phrase"]): (r["box"], r["PGA"], r["PGE"]) for r in records}
    assert {(k, phrase, tuple(box)) for (k, phrase), (box, _, _) in found.items()} == expected
    assert results["dataset"]["objects"] == len(expected) and len(records) == len(expected)
    _assert_points_like_the_bundled_run(found, _bundled_objects(demo_run))
    assert results["dataset"]["statistics"]["named, category not once in the image"] >= 1
    with Image.open(os.path.join(images, "img_0.png")) as image:
        assert image.size == (64 * SCALE, 64 * SCALE) == (256, 256)  # 4x the model's 64 px


def test_hnc_file_gives_the_hard_negatives(tmp_path, demo_run):
    scenes = demo_scenes(N, seed=0)
    data = {}
    for example, scene in zip(demo_dataset(N, seed=0), scenes):
        image_id = f"g{example.index}"
        scene.pil().save(tmp_path / f"{image_id}.png")  # lossless: the scores below are on the scene itself
        negative = example.negatives[0]
        boxes = {str(k): {"bbox": {"x": o.box[0], "y": o.box[1], "w": o.box[2] - o.box[0], "h": o.box[3] - o.box[1]},
                          "name": o.shape} for k, o in enumerate(scene.objects)}
        data[image_id] = {"captions": {
            "0": {"caption": scene.caption, "label": 1, "bboxes": boxes},
            "1": {"caption": negative.caption, "label": 0, "cpt_p_id": 0, "type": negative.category,
                  "replaced": list(negative.swap), "bboxes": boxes}}}
    path = tmp_path / "hnc.json"
    path.write_text(json.dumps(data))
    run_evaluation(out=str(tmp_path / "run"), methods=["icam"], completeness_scenes=0, show_progress=False,
                   dataset="hnc", annotations=str(path), images=str(tmp_path))
    negatives = read_records(str(tmp_path / "run"), "negative")
    assert len(negatives) == N
    model, tokenizer, processor = load_demo_model()
    from captum_bilinear.encoders import as_dual_encoder

    dual = as_dual_encoder(model)
    for record in negatives:
        example = demo_dataset(N, seed=0)[int(record["example_id"][1:].split("#")[0])]
        image = processor(images=[example.image()], return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            scores = [float(dual(tokenizer(text, return_tensors="pt")["input_ids"], image))
                      for text in (example.caption, example.negatives[0].caption)]
        assert record["delta_S"] == pytest.approx(scores[1] - scores[0], abs=1e-6)
        assert record["swap"] == list(example.negatives[0].swap)
