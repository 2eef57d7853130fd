"""The bundled demo world through the dataset interface.

Held-out scenes of :mod:`captum_bilinear.zoo` (the stream ``captum-bilinear evaluate
--scenes N --seed S`` has always used): every named object with the character span of
its words (size, colour, shape) and its box; the category is its shape. Each scene has
one hard negative, one colour or shape word swapped, drawn from the seed and the scene's
position.
"""

from typing import Any, List, Sequence, Tuple

from captum_bilinear.datasets.base import Dataset, DatasetObject, Example, HardNegative


def demo_scenes(n_scenes: int, seed: int = 0) -> List[Any]:
    """The held-out scenes of ``evaluate --scenes n_scenes --seed seed`` (the demo model
    was trained on stream 0; each seed has a stream of its own).

    Example:
        >>> [scene.size for scene in demo_scenes(2, seed=0)]
        [(64, 64), (64, 64)]
    """
    from captum_bilinear.zoo import HELD_OUT_SEED, SceneGenerator

    if isinstance(n_scenes, bool) or not isinstance(n_scenes, int) or n_scenes < 0:
        raise ValueError(f"n_scenes: expected a non-negative int, got {n_scenes!r}")
    return SceneGenerator(HELD_OUT_SEED + 1 + int(seed), mode="mixed").scenes(n_scenes)


def word_offsets(words: Sequence[str]) -> List[Tuple[int, int]]:
    """Character offsets of each word in ``words_to_caption(words)`` (commas attach to
    the word before them).

    Example:
        >>> word_offsets(["a", "red", "circle", ",", "a", "star"])
        [(0, 1), (2, 5), (6, 12), (12, 13), (14, 15), (16, 20)]
    """
    offsets, length = [], 0
    for word in words:
        if word != "," and length:
            length += 1
        offsets.append((length, length + len(word)))
        length += len(word)
    return offsets


def scene_object_span(scene: Any, obj: Any) -> Tuple[int, int]:
    """Characters of the caption that name ``obj`` (its token span is word-aligned:
    token ``i`` is ``scene.words[i - 1]``)."""
    offsets = word_offsets(scene.words)
    start, stop = obj.span
    return offsets[start - 1][0], offsets[stop - 2][1]


def _float_box(box: Sequence[int]) -> Tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return x0, y0, x1, y1


def negative_seed(seed: int, index: int) -> int:
    """The seed of scene ``index``'s hard negative in a run of ``seed``."""
    return int(seed) * 100003 + int(index)


def demo_dataset(n_scenes: int, seed: int = 0, scenes: Sequence[Any] = ()) -> Dataset:
    """``n_scenes`` held-out scenes as a :class:`~captum_bilinear.datasets.Dataset`.

    Args:
        n_scenes: number of scenes.
        seed: which stream of held-out scenes (and of their hard negatives).
        scenes: use these scenes instead (e.g. from :func:`demo_scenes`).

    Example:
        >>> example = demo_dataset(1, seed=0)[0]
        >>> example.caption, [example.phrase(o) for o in example.objects]
        ('there is a small star in the picture', ['small star'])
        >>> example.negatives[0].caption
        'there is a small diamond in the picture'
    """
    scenes = list(scenes) if scenes else demo_scenes(n_scenes, seed)
    examples = []
    for index, scene in enumerate(scenes):
        objects = tuple(DatasetObject(scene_object_span(scene, obj), _float_box(obj.box), obj.shape)
                        for obj in scene.objects)
        negatives: Tuple[HardNegative, ...] = ()
        if scene.objects:
            negative = scene.hard_negative(seed=negative_seed(seed, index))
            changed, attribute, true_word, false_word = negative.negative
            negatives = (HardNegative(
                negative.caption, scene_object_span(negative, negative.objects[changed]),
                objects[changed].span, objects[changed].box, attribute, (true_word, false_word)),)
        examples.append(Example(f"scene-{index:05d}", index, f"scene-{index:05d}", scene.caption, objects,
                                scene.pil, negatives))
    return Dataset("demo", examples, {"scenes": len(scenes), "objects": sum(len(e.objects) for e in examples)},
                   {"scenes": len(scenes), "seed": seed})
