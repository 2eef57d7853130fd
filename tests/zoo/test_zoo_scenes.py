"""The scene generator: determinism, geometry, captions, spans and hard negatives."""

import numpy as np
import pytest

from captum_bilinear.zoo import (
    COLOURS,
    SHAPES,
    SIZES,
    VOCABULARY,
    SceneGenerator,
    caption_fits,
    generate_scene,
    hard_negative,
    words_to_caption,
)


@pytest.fixture(scope="module")
def scenes():
    return SceneGenerator(5).scenes(300)


def test_same_seed_same_scene_and_different_seeds_differ():
    a, b = generate_scene(11), generate_scene(11)
    assert np.array_equal(a.image, b.image)
    assert a.caption == b.caption and a.objects == b.objects and a.unnamed_objects == b.unnamed_objects
    first = [(s.caption, s.image.tobytes()) for s in SceneGenerator(3).scenes(5)]
    again = [(s.caption, s.image.tobytes()) for s in SceneGenerator(3).scenes(5)]
    other = [(s.caption, s.image.tobytes()) for s in SceneGenerator(4).scenes(5)]
    assert first == again
    assert all(x != y for x, y in zip(first, other))
    # scene i of a stream does not depend on how many were drawn before
    assert SceneGenerator(3).scene(4).caption == SceneGenerator(3).scenes(2, start=3)[1].caption


def test_attribute_coverage_and_counts(scenes):
    objects = [o for s in scenes for o in s.all_objects]
    assert {o.shape for o in objects} == set(SHAPES) and len(SHAPES) >= 5
    assert {o.colour for o in objects} == set(COLOURS) and len(COLOURS) >= 6
    assert {o.size for o in objects} == set(SIZES) and len(SIZES) >= 2
    counts = [len(s.all_objects) for s in scenes]
    assert min(counts) == 1 and max(counts) == 4
    assert all(s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8 for s in scenes)
    assert all(len({(o.colour, o.shape) for o in s.all_objects}) == len(s.all_objects) for s in scenes)


def test_boxes_inside_image_and_mostly_disjoint(scenes):
    overlapping = 0
    for s in scenes:
        boxes = [o.box for o in s.all_objects]
        for x0, y0, x1, y1 in boxes:
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            assert 6 <= x1 - x0 <= 24 and 6 <= y1 - y0 <= 24
        pairs = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]]
        overlapping += any(min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]) for a, b in pairs)
    assert overlapping <= 0.2 * len(scenes)


def test_object_colour_dominates_its_box(scenes):
    dominant = total = 0
    for s in scenes:
        image = s.image.astype(int)
        for o in s.all_objects:
            x0, y0, x1, y1 = o.box
            crop = image[y0:y1, x0:x1]
            near = {c: (np.abs(crop - np.array(rgb)).sum(-1) < 100).mean() for c, rgb in COLOURS.items()}
            assert near[o.colour] >= 0.3, (s.seed, o)
            dominant += max(near, key=near.get) == o.colour
            total += 1
            # the box is tight: the object (blended >= 50% with the background) touches each edge
            background = np.median(image.reshape(-1, 3), axis=0)
            limit = 0.55 * np.abs(background - np.array(o.rgb)).sum() + 25
            mask = np.abs(crop - np.array(o.rgb)).sum(-1) < limit
            assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any(), (s.seed, o)
    assert dominant >= 0.95 * total


def test_caption_words_spans_and_modes(scenes):
    modes = {s.mode for s in scenes}
    assert modes == {"full", "subset"}
    with_relation = 0
    for s in scenes:
        assert set(s.words) <= set(VOCABULARY)
        assert s.caption == words_to_caption(s.words)
        assert len(s.words) + 2 <= 32
        assert len(s.objects) >= 1
        assert set(s.objects) | set(s.unnamed_objects) == set(s.all_objects)
        if s.mode == "full":
            assert not s.unnamed_objects
        for o in s.objects:
            start, stop = o.span
            assert stop - start == len(o.words) >= 1
            assert tuple(s.words[start - 1 : stop - 1]) == o.words  # position 0 is the start token
            assert o.words[-1] == o.shape
            assert all(w in (o.size, o.colour, o.shape) for w in o.words)
            # the words identify the object among all objects of the image
            assert sum(all(w in (p.size, p.colour, p.shape) for w in o.words) for p in s.all_objects) == 1
        assert all(o.span is None and o.words == () for o in s.unnamed_objects)
        if s.relation is not None:
            with_relation += 1
            i, rel, j = s.relation
            (xi, yi), (xj, yj) = s.objects[i].center, s.objects[j].center
            assert {"left": xi < xj, "right": xi > xj, "above": yi < yj, "below": yi > yj}[rel]
            assert rel in s.words
        assert caption_fits(s, s)
    assert 0.15 * len(scenes) <= with_relation <= 0.6 * len(scenes)
    assert any(s.caption.startswith("a photo of") for s in scenes)


def test_full_mode_names_every_object():
    for s in SceneGenerator(8, mode="full").scenes(50):
        assert s.mode == "full" and not s.unnamed_objects
        assert all(o.colour in o.words for o in s.objects)
    subset = SceneGenerator(8, mode="subset", min_objects=3).scenes(50)
    assert sum(bool(s.unnamed_objects) for s in subset) >= 25


@pytest.mark.parametrize("attribute", ["colour", "shape"])
def test_hard_negative_swaps_one_word(attribute):
    for seed in range(40):
        scene = generate_scene(seed, mode="full")
        index = seed % len(scene.objects)
        negative = hard_negative(scene, attribute=attribute, index=index, seed=seed)
        assert negative.image is scene.image
        i, attr, true_word, false_word = negative.negative
        assert (i, attr) == (index, attribute) and true_word != false_word
        assert true_word == getattr(scene.objects[index], attribute)
        changed = [k for k, (a, b) in enumerate(zip(scene.words, negative.words)) if a != b]
        assert len(negative.words) == len(scene.words)
        assert 1 <= len(changed) <= 2 and set(changed) - {k for k in changed if scene.words[k] in ("a", "an")}
        obj = negative.objects[index]
        assert obj.span == scene.objects[index].span and false_word in obj.words
        assert tuple(negative.words[obj.span[0] - 1 : obj.span[1] - 1]) == obj.words
        assert not caption_fits(negative, scene)
        assert hard_negative(scene, attribute=attribute, index=index, seed=seed).caption == negative.caption


def test_invalid_arguments():
    with pytest.raises(ValueError):
        generate_scene(0, mode="everything")
    with pytest.raises(ValueError):
        generate_scene(0, min_objects=3, max_objects=2)
    scene = next(
        s for s in SceneGenerator(2, mode="subset").scenes(100) if s.objects[0].colour not in s.objects[0].words
    )
    with pytest.raises(ValueError):
        hard_negative(scene, attribute="colour", index=0)
