"""The evaluation as pages: with --keep-terms every pair's terms are saved (the very terms
that were scored), each pair gets its explorer, and report.html links the failure gallery
and every object row to it (without: tests/evaluation/test_run.py)."""

import base64
import json
import os
import re

import numpy as np
import pytest
import torch

from captum_bilinear import InteractionCAM, InteractionTerms
from captum_bilinear.datasets import demo_dataset
from captum_bilinear.datasets.prepare import prepare_example
from captum_bilinear.evaluation import run_evaluation
from captum_bilinear.evaluation.pages import failure_cases, pair_name
from captum_bilinear.evaluation.records import read_records
from captum_bilinear.loading import load_model
from captum_bilinear.metrics import pointing_game
from captum_bilinear.selection import span_image_map

METHODS = ["icam", "itsm", "itsm-o", "lig"]


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("kept")
    results = run_evaluation(1, seed=1, out=str(out), methods=METHODS, n_steps=4, completeness_scenes=0,
                             show_progress=False, keep_terms=True)
    return out, results


def page_data(path):
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script type="application/json" id="[^"]+-data">(.*?)</script>', text, re.S).group(1))


def test_kept_terms_are_the_scored_ones_and_the_methods_own(kept_run):
    out, _ = kept_run
    dataset = demo_dataset(1, seed=1)
    loaded = load_model()
    for record in read_records(str(out), "object"):
        if record["method"] != "InteractionCAM":
            continue
        terms = InteractionTerms.load(out / "terms" / pair_name(record["example_id"]) / "icam")
        # the record's PGE from the kept terms (the terms that were scored)
        result = pointing_game(span_image_map(terms.cross[0], tuple(record["span"]), terms.grid), record["box"],
                               tuple(terms.image.shape[1:3]))
        assert result.energy == pytest.approx(record["PGE"], abs=1e-9)
    # and they are InteractionCAM's own result on the pair, recomputed here
    example = dataset.examples[0]
    prepared = prepare_example(example, loaded.tokenizer, loaded.image_processor, 8)
    terms = InteractionTerms.load(out / "terms" / pair_name(example.example_id) / "icam")
    layers = (loaded.model.text_model.embeddings, loaded.model.vision_model.embeddings)
    A = InteractionCAM(loaded.model, layers).attribute((prepared.input_ids, prepared.pixel_values),
                                                       additional_forward_args=((prepared.attention_mask,), None))
    torch.testing.assert_close(terms.cross, A)
    assert terms.tokens[0][0] == "[BOS]" and len(terms.tokens[0]) == A.shape[1] and terms.grid == (8, 8)
    assert np.array_equal(terms.image[0].numpy(), prepared.display)


def test_each_pair_has_its_explorer_opened_from_report_html(kept_run):
    out, results = kept_run
    report = (out / "report.html").read_text(encoding="utf-8")
    links = re.findall(r'href="(pages/[^"#]+\.html)#([^"]+)"', report)
    objects = read_records(str(out), "object")
    interaction_objects = [r for r in objects if r["method"] == "InteractionCAM"]
    assert len(links) >= len(interaction_objects) == results["dataset"]["objects"]
    for page, fragment in links:
        assert os.path.isfile(out / page)
        parameters = dict(part.split("=", 1) for part in fragment.replace("&amp;", "&").split("&"))
        assert parameters["method"] == "InteractionCAM"
    record = interaction_objects[0]
    data = page_data(out / "pages" / f"{pair_name(record['example_id'])}.html")
    assert [m["name"] for m in data["methods"]] == ["InteractionCAM", "ITSM-H", "ITSM-O"]  # as the evaluation names them
    terms = InteractionTerms.load(out / "terms" / pair_name(record["example_id"]) / "icam")
    decoded = np.frombuffer(base64.b64decode(data["methods"][0]["data"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, terms.cross[0].numpy().ravel())
    # LayerIntegratedGradients' image map is the first-order view
    lig = InteractionTerms.load(out / "terms" / pair_name(record["example_id"]) / "lig")
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(data["firstOrder"]["data"]), dtype="<f4"),
                                  lig.first_b[0, 1:].numpy())
    span, box = record["span"], record["box"]
    assert f"span={span[0]},{span[1]}" in report and "box=" + ",".join(f"{float(v):g}" for v in box) in report
    for case in failure_cases(objects, ["InteractionCAM", "ITSM-H"]):
        assert f">{case['phrase']}</a>" in report
