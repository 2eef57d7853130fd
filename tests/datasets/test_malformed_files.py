"""Malformed dataset files are one error naming the option, the file and the entry (the
command line prints it as one line and exits with 2), and no caption is lost to a
duplicated id. Before, these crashed with KeyError / TypeError / AttributeError /
ParseError tracebacks or with messages that named neither the file nor the option."""

import json

import pytest

from captum_bilinear.cli import main
from captum_bilinear.datasets import read_coco, read_flickr30k_entities, read_hnc


def _coco_files(tmp_path, captions=None, instances=None):
    images = [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}]
    captions = captions if captions is not None else {
        "annotations": [{"id": 1, "image_id": 1, "caption": "a dog on grass"}]}
    instances = instances if instances is not None else {
        "images": images, "categories": [{"id": 18, "name": "dog"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 18, "bbox": [8, 8, 40, 40], "iscrowd": 0}]}
    (tmp_path / "images").mkdir(exist_ok=True)
    paths = {}
    for name, content in (("captions", captions), ("instances", instances)):
        path = tmp_path / f"{name}.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content))
        paths[name] = str(path)
    return str(tmp_path / "images"), paths["captions"], paths["instances"]


GOOD_INSTANCES = {"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 18, "name": "dog"}],
                  "annotations": [{"image_id": 1, "category_id": 18, "bbox": [8, 8, 40, 40]}]}

COCO_CASES = [
    ("null caption", {"annotations": [{"id": 7, "image_id": 1, "caption": None}]}, None,
     r'captions: .*captions.json: annotations\[0\] \(id 7\): "caption" is null, expected the caption, a string'),
    ("unknown category", None, dict(GOOD_INSTANCES, annotations=[{"image_id": 1, "category_id": 99, "bbox": [0, 0, 9, 9]}]),
     r'instances: .*instances.json: annotations\[0\]: category_id 99 is not among the file\'s "categories"'),
    ("image without file_name", None, dict(GOOD_INSTANCES, images=[{"id": 1, "width": 64}]),
     r'instances: .*instances.json: images\[0\] \(id 1\): has no "file_name"'),
    ("a list where the file's object belongs", [{"id": 1, "image_id": 1, "caption": "a dog"}], None,
     r"captions: .*captions.json: expected a COCO captions file, .* got a list"),
    ("a list where an annotation belongs", {"annotations": [[1, 1, "a dog"]]}, None,
     r"captions: .*captions.json: annotations\[0\]: expected an object, got a list"),
    ("a caption id that is a list", {"annotations": [{"id": [1], "image_id": 1, "caption": "a dog"}]}, None,
     r'captions: .*annotations\[0\]: "id" is a list, expected the caption\'s id'),
    ("bbox of three values", None, dict(GOOD_INSTANCES, annotations=[{"image_id": 1, "category_id": 18, "bbox": [0, 0, 9]}]),
     r'instances: .*annotations\[0\]: "bbox" has 3 values, expected \[x, y, width, height\]'),
    ("bbox of a string", None, dict(GOOD_INSTANCES, annotations=[{"image_id": 1, "category_id": 18, "bbox": [0, 0, "9", None]}]),
     r'instances: .*annotations\[0\]: "bbox" is missing, expected a number'),
    ("JSON syntax error", '{"annotations": [\n  {"id": 1,, "image_id": 1}]}', None,
     r"captions: .*captions.json: not valid JSON \(line 2, column 12: Expecting property name"),
    ("not UTF-8", None, b'{"images": [], "categories": [{"id": 1, "name": "caf\xe9"}], "annotations": []}',
     r"instances: .*instances.json: not UTF-8 text \(byte 0xe9 on line 1\)"),
    ("no annotations", {"images": []}, None, r'captions: .*captions.json: has no "annotations"'),
]


@pytest.mark.parametrize("case, captions, instances, message", COCO_CASES, ids=[c[0] for c in COCO_CASES])
def test_malformed_coco_is_one_error_naming_file_and_entry(tmp_path, case, captions, instances, message):
    with pytest.raises(ValueError, match=message):
        read_coco(*_coco_files(tmp_path, captions, instances))


def test_the_command_line_says_it_in_one_line_with_exit_2(tmp_path, capsys):
    images, captions, instances = _coco_files(tmp_path, {"annotations": [{"id": 7, "image_id": 1, "caption": None}]})
    status = main(["evaluate", "--dataset", "coco", "--images", images, "--captions", captions, "--instances",
                   instances, "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert err[0].startswith("captum-bilinear evaluate: error: --captions: ") and '"caption" is null' in err[0]


def test_duplicated_caption_ids_lose_no_caption(tmp_path):
    """pycocotools indexed captions by id: two captions with one id kept the last only."""
    captions = {"annotations": [{"id": 3, "image_id": 1, "caption": "a dog on grass"},
                                {"id": 3, "image_id": 1, "caption": "the dog sleeps"},
                                {"id": 2, "image_id": 1, "caption": "a brown dog"}]}
    dataset = read_coco(*_coco_files(tmp_path, captions, GOOD_INSTANCES))
    assert [(e.example_id, e.caption) for e in dataset] == [
        ("2", "a brown dog"), ("3", "a dog on grass"), ("3#1", "the dog sleeps")]
    assert dataset.statistics["captions"] == 3 and dataset.statistics["captions sharing an id with another"] == 1
    assert len({e.example_id for e in dataset}) == 3


def _flickr_root(tmp_path, sentence=b"[/EN#1/people A man] walks .\n", xml=None):
    for sub in ("Sentences", "Annotations"):
        (tmp_path / sub).mkdir(exist_ok=True)
    (tmp_path / "test.txt").write_text("42\n")
    (tmp_path / "Sentences" / "42.txt").write_bytes(sentence)
    xml = xml if xml is not None else (
        "<annotation><size><width>64</width><height>64</height></size><object><name>1</name><bndbox>"
        "<xmin>1</xmin><ymin>1</ymin><xmax>40</xmax><ymax>40</ymax></bndbox></object></annotation>")
    (tmp_path / "Annotations" / "42.xml").write_text(xml)
    return str(tmp_path)


FLICKR_CASES = [
    ("truncated XML", dict(xml="<annotation><size><width>64</width><height>64</height></size><object><na"),
     r"root: .*Annotations/42.xml: not well-formed XML \(.*\); the file may be truncated or damaged"),
    ("a word for a coordinate", dict(xml="<annotation><object><name>1</name><bndbox><xmin>left</xmin><ymin>1</ymin>"
                                         "<xmax>4</xmax><ymax>4</ymax></bndbox></object></annotation>"),
     r"root: .*42.xml: <object> 1: <xmin> is the string 'left', expected a number"),
    ("a missing coordinate", dict(xml="<annotation><object><name>1</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                                      "<xmax>4</xmax></bndbox></object></annotation>"),
     r"root: .*42.xml: <object> 1: <ymax> is missing"),
    ("sentences not UTF-8", dict(sentence=b"[/EN#1/people A caf\xe9 owner] walks .\n"),
     r"root: .*Sentences/42.txt: not UTF-8 text \(byte 0xe9 on line 1\)"),
]


@pytest.mark.parametrize("case, files, message", FLICKR_CASES, ids=[c[0] for c in FLICKR_CASES])
def test_malformed_flickr30k_entities_is_one_error_naming_the_file(tmp_path, case, files, message):
    root = _flickr_root(tmp_path, **files)
    with pytest.raises(ValueError, match=message):
        read_flickr30k_entities(root, root, "test")


def _hnc(tmp_path, data):
    path = tmp_path / "hnc.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


BOX = {"1": {"bbox": {"x": 0, "y": 0, "w": 20, "h": 10}, "name": "car"}}
HNC_CASES = [
    ("captions as a list", {"img1": {"captions": [{"caption": "the red car", "label": 1}]}},
     r'annotations: .*hnc.json: image img1: "captions": expected an object CAPTION_ID'),
    ("null caption", {"img1": {"captions": {"0": {"caption": None, "label": 1, "bboxes": BOX}}}},
     r'annotations: .*hnc.json: image img1: caption 0: "caption" is null, expected the caption, a string'),
    ("a word for a label", {"img1": {"captions": {"0": {"caption": "the red car", "label": "yes"}}}},
     r'annotations: .*image img1: caption 0: "label" is \'yes\', expected 1 \(a true caption\) or 0'),
    ("bboxes as a list", {"img1": {"captions": {"0": {"caption": "the red car", "label": 1, "bboxes": [1, 2]}}}},
     r'annotations: .*image img1: caption 0: "bboxes" is a list, expected an object'),
    ("a caption entry that is a string", {"img1": {"captions": {"0": "the red car"}}},
     r"annotations: .*image img1: caption 0: expected an object .* got the string 'the red car'"),
    ("a file that is a list", [{"img1": {}}], r"annotations: .*hnc.json: expected a JSON object IMAGE_ID"),
    ("JSON syntax error", '{"img1": {"captions": {"0": {"caption": "the red car", "label": 1}}}', 
     r"annotations: .*hnc.json: not valid JSON \(line 1, column 69"),
]


@pytest.mark.parametrize("case, data, message", HNC_CASES, ids=[c[0] for c in HNC_CASES])
def test_malformed_hnc_is_one_error_naming_file_and_entry(tmp_path, case, data, message):
    with pytest.raises(ValueError, match=message):
        read_hnc(_hnc(tmp_path, data), str(tmp_path))


@pytest.mark.parametrize("content, message", [
    ('{"dog": ["puppy",]}', r"synonyms: .*syn.json: not valid JSON \(line 1, column 18"),
    ('{"dog": 3}', r"synonyms: expected a list of words for 'dog', got 3"),
])
def test_a_malformed_synonyms_file_is_named(tmp_path, content, message):
    (tmp_path / "syn.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_coco(*_coco_files(tmp_path), synonyms=str(tmp_path / "syn.json"))
