"""The readers on files written by an independent exporter at 4x the demo model's
resolution: they find exactly the objects the filters should find, with the spans and
boxes the scenes have (mapped back into the model's pixels); the package's writers
round-trip; real-format quirks."""

import json
import re

import pytest

from captum_bilinear.datasets import (
    demo_dataset,
    demo_scenes,
    prepare_example,
    read_coco,
    read_flickr30k_entities,
    read_hnc,
    write_coco,
    write_flickr30k_entities,
)
from captum_bilinear.zoo import load_demo_model
from independent_export import SCALE, export_coco, export_flickr

N_SCENES = 12


@pytest.fixture(scope="module")
def scenes():
    return demo_scenes(N_SCENES, seed=5)


@pytest.fixture(scope="module")
def demo_model():
    _, tokenizer, processor = load_demo_model()
    return tokenizer, processor


def _expected_coco(scenes):
    """Named objects whose shape occurs once in the image (named or not), named by the
    shape word: (caption index, shape, box in the exported pixels)."""
    expected = set()
    for k, scene in enumerate(scenes):
        shapes = [o.shape for o in list(scene.objects) + list(scene.unnamed_objects)]
        for obj in scene.objects:
            if shapes.count(obj.shape) == 1 and re.search(rf"\b{obj.shape}\b", scene.caption):
                expected.add((k, obj.shape, tuple(SCALE * v for v in obj.box)))
    return expected


def test_coco_reader_finds_the_objects_the_filter_should(tmp_path, scenes, demo_model):
    images, captions, instances = export_coco(scenes, str(tmp_path))
    dataset = read_coco(images, captions, instances)
    found = set()
    order = {5000 + 10 * k: k for k in range(len(scenes))}
    for example in dataset:
        k = order[int(example.example_id)]
        assert example.caption == scenes[k].caption
        for obj in example.objects:
            assert example.phrase(obj) == obj.category  # the shape word itself
            found.add((k, obj.category, obj.box))
    assert found == _expected_coco(scenes)
    assert 0 < len(found) < sum(len(s.objects) for s in scenes)  # the once-in-the-image filter drops some
    # mapped into the model: 256 px -> 64 px, the scenes' own boxes and token spans of the shape word
    tokenizer, processor = demo_model
    example = dataset[0]
    prepared = prepare_example(example, tokenizer, processor, patch_size=8)
    scene = scenes[order[int(example.example_id)]]
    for obj in prepared.objects:
        (truth,) = [o for o in scene.objects if o.shape == obj.category]
        assert obj.box == tuple(float(v) for v in truth.box)
        assert obj.span == (truth.span[1] - 1, truth.span[1])  # the last word of the object's words


def test_flickr_reader_finds_every_named_object(tmp_path, scenes, demo_model):
    root, images = export_flickr(scenes, str(tmp_path))
    dataset = read_flickr30k_entities(root, images, "test")
    assert len(dataset) == sum(1 for s in scenes if s.objects)
    tokenizer, processor = demo_model
    for example in dataset:
        scene = scenes[int(example.image_id) - 700000]
        assert example.caption == scene.caption
        assert [example.phrase(o) for o in example.objects] == [" ".join(o.words) for o in scene.objects]
        assert [o.box for o in example.objects] == [tuple(float(SCALE * v) for v in o.box) for o in scene.objects]
    prepared = prepare_example(dataset[1], tokenizer, processor, patch_size=8)
    scene = scenes[int(dataset[1].image_id) - 700000]
    assert [o.span for o in prepared.objects] == [o.span for o in scene.objects]
    assert [o.box for o in prepared.objects] == [tuple(float(v) for v in o.box) for o in scene.objects]
    assert prepared.pixel_values.shape[-2:] == (64, 64)


def test_package_writers_round_trip(tmp_path, scenes):
    truth = demo_dataset(N_SCENES, seed=5)
    paths = write_flickr30k_entities(scenes, str(tmp_path / "flickr"), scale=3)
    flickr = read_flickr30k_entities(paths["root"], paths["images"], "test")
    assert [e.caption for e in flickr] == [e.caption for e in truth if e.objects]
    for read, expected in zip(flickr, [e for e in truth if e.objects]):
        assert [o.span for o in read.objects] == [o.span for o in expected.objects]
        assert [o.box for o in read.objects] == [tuple(3 * v for v in o.box) for o in expected.objects]
        assert read.image().size == (192, 192)
    paths = write_coco(scenes, str(tmp_path / "coco"), scale=3)
    coco = read_coco(paths["images"], paths["captions"], paths["instances"])
    assert {(e.caption, o.category, o.box) for e in coco for o in e.objects} == {
        (scenes[k].caption, shape, tuple(float(v) for v in box)) for k, shape, box in
        ((k, shape, tuple(v / SCALE * 3 for v in box)) for k, shape, box in _expected_coco(scenes))}


def _write_coco_json(tmp_path, captions, instances, categories):
    images = [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}]
    (tmp_path / "images").mkdir(exist_ok=True)
    with open(tmp_path / "captions.json", "w") as handle:
        json.dump({"images": images, "annotations": [{"id": i + 1, "image_id": 1, "caption": c}
                                                     for i, c in enumerate(captions)]}, handle)
    with open(tmp_path / "instances.json", "w") as handle:
        json.dump({"images": images, "categories": categories,
                   "annotations": [dict(a, id=i + 1, image_id=1) for i, a in enumerate(instances)]}, handle)
    return read_coco(str(tmp_path / "images"), str(tmp_path / "captions.json"), str(tmp_path / "instances.json"))


def test_coco_quirks(tmp_path):
    categories = [{"id": 18, "name": "dog"}, {"id": 17, "name": "cat"}, {"id": 58, "name": "hot dog"},
                  {"id": 1, "name": "person"}]
    instances = [
        {"category_id": 18, "bbox": [10, 20, 100, 50], "iscrowd": 0},
        {"category_id": 17, "bbox": [0, 0, 30, 30], "iscrowd": 0},   # two cats: not once in the image
        {"category_id": 17, "bbox": [200, 0, 30, 30], "iscrowd": 0},
        {"category_id": 58, "bbox": [300, 300, 40, 20], "iscrowd": 0},
        {"category_id": 1, "bbox": [0, 0, 600, 400], "iscrowd": 1},   # a crowd of people
    ]
    dataset = _write_coco_json(tmp_path, [
        "A puppy, next to a cat.",          # a synonym with a comma attached; cat twice in the image
        "Someone holds a hot dog near the Dog's bowl.",  # longer name first; case, possessive
        "People in a crowd.",               # only a crowd annotation: never counts
    ], instances, categories)
    first, second = dataset.examples
    assert [(first.phrase(o), o.category, o.box) for o in first.objects] == [("puppy", "dog", (10.0, 20.0, 110.0, 70.0))]
    assert [(second.phrase(o), o.category) for o in second.objects] == [("hot dog", "hot dog"), ("Dog", "dog")]
    assert dataset.statistics["captions without a counted object"] == 1
    # a replaced dictionary: "puppy" no longer names a dog
    replaced = read_coco(str(tmp_path / "images"), str(tmp_path / "captions.json"), str(tmp_path / "instances.json"),
                         synonyms={"dog": ["dog"]})
    assert [e.caption for e in replaced] == ["Someone holds a hot dog near the Dog's bowl."]


def test_coco_bad_paths_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="images: expected a directory"):
        read_coco(str(tmp_path / "nope"), "x.json", "y.json")


def test_flickr_quirks(tmp_path):
    for sub in ("Sentences", "Annotations"):
        (tmp_path / sub).mkdir()
    (tmp_path / "test.txt").write_text("42\n")
    (tmp_path / "Sentences" / "42.txt").write_text(
        "[/EN#1/people A man] walks [/EN#2/animals two dogs] past [/EN#3/other/scene a wall] in "
        "[/EN#4/clothing/people a red coat] .\n")
    (tmp_path / "Annotations" / "42.xml").write_text(
        "<annotation><size><width>500</width><height>333</height><depth>3</depth></size>"
        "<object><name>1</name><name>4</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>100</xmax><ymax>200</ymax>"
        "</bndbox></object>"
        "<object><name>2</name><bndbox><xmin>200</xmin><ymin>100</ymin><xmax>250</xmax><ymax>150</ymax></bndbox></object>"
        "<object><name>2</name><bndbox><xmin>300</xmin><ymin>100</ymin><xmax>350</xmax><ymax>150</ymax></bndbox></object>"
        "<object><name>3</name><nobndbox>1</nobndbox><scene>1</scene></object></annotation>")
    dataset = read_flickr30k_entities(str(tmp_path), str(tmp_path), "test")
    (example,) = dataset.examples
    assert example.caption == "A man walks two dogs past a wall in a red coat ."
    # "two dogs" has two boxes, "a wall" none: left out; one box shared by two entities
    assert [(example.phrase(o), o.category, o.box) for o in example.objects] == [
        ("A man", "people", (0.0, 0.0, 100.0, 200.0)), ("a red coat", "clothing", (0.0, 0.0, 100.0, 200.0))]
    assert dataset.statistics["phrases with several boxes"] == 1
    assert dataset.statistics["phrases without a box"] == 1
    with pytest.raises(ValueError, match="split: expected one of"):
        read_flickr30k_entities(str(tmp_path), str(tmp_path), "dev")


def test_hnc_format(tmp_path):
    box_car = {"bbox": {"x": 10, "y": 20, "w": 100, "h": 50}, "name": "car"}
    box_man = {"bbox": {"x": 200, "y": 0, "w": 50, "h": 150}, "name": "man"}
    data = {
        "2354786": {"captions": {
            "0": {"caption": "the man is left of the red car", "label": 1, "bboxes": {"1": box_man, "2": box_car}},
            "1": {"caption": "the man is left of the blue car", "label": 0, "cpt_p_id": 0, "type": "attribute",
                  "replaced": ["red", "blue"], "bboxes": {"1": box_man, "2": box_car}},
            "2": {"caption": "the woman is left of the red car", "label": 0, "cpt_p_id": 0, "type": "object",
                  "replaced": ["man", "woman"], "bboxes": {"1": box_man, "2": box_car}},
            "3": {"caption": "the man is right of the red car", "label": 0, "cpt_p_id": 0, "type": "relation"},
        }},
        "77": {"5": {"caption": "a car next to a car", "label": 1, "bboxes": {"1": box_car, "2": box_car}}},
    }
    path = tmp_path / "hnc.json"
    path.write_text(json.dumps(data))
    dataset = read_hnc(str(path), str(tmp_path))
    (example,) = dataset.examples  # "a car next to a car": the name is not once in the caption
    assert example.example_id == "2354786#0"
    assert [(example.phrase(o), o.box) for o in example.objects] == [("man", (200.0, 0.0, 250.0, 150.0)),
                                                                    ("car", (10.0, 20.0, 110.0, 70.0))]
    attribute, entity = example.negatives
    assert attribute.caption[slice(*attribute.span)] == "blue"
    assert example.caption[slice(*attribute.original_span)] == "red"
    assert attribute.box == (10.0, 20.0, 110.0, 70.0)  # the object named after the attribute
    assert entity.caption[slice(*entity.span)] == "woman" and entity.box == (200.0, 0.0, 250.0, 150.0)
    assert dataset.statistics["hard negatives without a replacement"] == 1
    with pytest.raises(FileNotFoundError, match="2354786"):
        example.image()


def _example_of_boxes(boxes, size=256):
    """One example on a blank ``size`` px image (4x the demo model's 64 px) naming one
    object per box."""
    from PIL import Image

    from captum_bilinear.datasets.base import DatasetObject, Example

    words = [f"box{k}" for k in range(len(boxes))]
    caption = " and ".join(words)
    objects = tuple(DatasetObject((caption.index(w), caption.index(w) + len(w)), box, "box")
                    for w, box in zip(words, boxes))
    return Example("e", 0, "e", caption, objects, lambda: Image.new("RGB", (size, size), (90, 90, 90)))


def test_boxes_not_larger_than_a_patch_are_dropped(demo_model):
    """The demo model sees 64 px in 8 px patches (64 px² each); at 4x a box of s x s image
    pixels is (s/4)² model pixels: 28 px -> 49 < 64 and 32 px -> exactly 64 (not larger)
    are dropped, 33 px -> 68.06 and 36 px -> 81 are kept."""
    tokenizer, processor = demo_model
    boxes = [(10.0, 10.0, 38.0, 38.0), (100.0, 100.0, 132.0, 132.0), (0.0, 200.0, 33.0, 233.0),
             (200.0, 0.0, 236.0, 36.0)]
    prepared = prepare_example(_example_of_boxes(boxes), tokenizer, processor, patch_size=8)
    assert [o.index for o in prepared.objects] == [2, 3]
    assert [o.box for o in prepared.objects] == [(0.0, 50.0, 8.25, 58.25), (50.0, 0.0, 59.0, 9.0)]
    assert prepared.dropped == {"object box not larger than a patch": 2}
    # half a patch is enough with min_box_patches=0.5 (32 px²): all four kept
    looser = prepare_example(_example_of_boxes(boxes), tokenizer, processor, patch_size=8, min_box_patches=0.5)
    assert [o.index for o in looser.objects] == [0, 1, 2, 3] and looser.dropped == {}


class _TokenizerWithoutOffsets:
    """Like a slow (sentencepiece) SigLIP tokenizer: accepts return_offsets_mapping and
    returns no offsets."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, text, return_offsets_mapping=False, **options):
        return self.tokenizer(text, **options)


def test_a_tokenizer_without_offsets_is_refused_clearly(demo_model):
    tokenizer, processor = demo_model
    example = demo_dataset(1, seed=0)[0]
    with pytest.raises(ValueError, match=r"_TokenizerWithoutOffsets returned no offset_mapping; .*fast"):
        prepare_example(example, _TokenizerWithoutOffsets(tokenizer), processor, patch_size=8)


def test_boxes_overhanging_the_image_are_clipped_and_only_those_outside_dropped(demo_model):
    """COCO has boxes that overhang the image by a fraction of a pixel (float boxes); they
    were dropped as "outside the model's view". 256 px image, 4x the model's 64 px."""
    tokenizer, processor = demo_model
    boxes = [(200.0, 0.0, 256.4, 40.0),     # 0.4 px beyond the right edge
             (-0.5, 100.0, 40.0, 140.0),    # half a pixel left of the left edge
             (100.0, 220.0, 140.0, 256.25),  # a quarter beyond the bottom
             (257.0, 0.0, 300.0, 40.0)]     # wholly outside
    prepared = prepare_example(_example_of_boxes(boxes), tokenizer, processor, patch_size=8)
    assert [o.index for o in prepared.objects] == [0, 1, 2]
    assert [o.box for o in prepared.objects] == [(50.0, 0.0, 64.0, 10.0), (0.0, 25.0, 10.0, 35.0),
                                                 (25.0, 55.0, 35.0, 64.0)]
    assert prepared.dropped == {"object box outside the image": 1}
