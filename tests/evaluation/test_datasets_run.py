"""`evaluate` on files in the datasets' formats: a Flickr30k Entities export of demo
scenes at 4x the model's resolution (written by the tests' own exporter) finds every
named object and points as the bundled evaluation does; an HNC file of demo scenes gives
the hard negatives' δS of the model computed here."""

import json
import os
import sys

import pytest
import torch

from captum_bilinear.datasets import demo_dataset, demo_scenes
from captum_bilinear.evaluation import run_evaluation
from captum_bilinear.evaluation.records import read_records
from captum_bilinear.zoo import load_demo_model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "datasets"))
from independent_export import export_flickr  # noqa: E402

N = 3


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    run_evaluation(N, seed=0, out=str(out), methods=["icam"], completeness_scenes=0, show_progress=False)
    return read_records(str(out))


def test_flickr_export_at_4x_points_like_the_bundled_world(tmp_path, demo_run):
    root, images = export_flickr(demo_scenes(N, seed=0), str(tmp_path / "flickr"))
    results = run_evaluation(out=str(tmp_path / "run"), methods=["icam"], completeness_scenes=0, show_progress=False,
                             dataset="flickr30k-entities", root=root, images=images, split="test")
    assert results["dataset"]["objects"] == demo_dataset(N, seed=0).n_objects
    ours = sorted((r["phrase"], r["box"], r["PGE"]) for r in read_records(str(tmp_path / "run"), "object"))
    bundled = sorted((r["phrase"], r["box"], r["PGE"]) for r in demo_run if r["kind"] == "object")
    assert [(p, b) for p, b, _ in ours] == [(p, b) for p, b, _ in bundled]
    # the 256 px images come back to 64 px through the processor's bicubic resize
    assert [e for _, _, e in ours] == pytest.approx([e for _, _, e in bundled], abs=0.05)


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
