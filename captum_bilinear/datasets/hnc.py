"""HNC (Dönmez et al. 2023, hard negative captions on GQA images) as exCLIP reads it.

Layout::

    hnc_clean_strict_test.json   {IMAGE_ID: {"captions": {CAPTION_ID: {
                                     "caption": "the red car", "label": 1 (true) | 0 (hard negative),
                                     "type": "attribute" | "object" | ..., "cpt_p_id": the true caption's id
                                     (negatives), "replaced": [original, replacement] (negatives),
                                     "bboxes": {OBJECT_ID: {"bbox": {"x", "y", "w", "h"}, "name": "car"}}}}}}
                                 (the "captions" level may be missing, as exCLIP's reader allows)
    IMAGES/IMAGE_ID.jpg          GQA's images

Every true caption (``label`` 1) is one example. Its objects are the ``bboxes`` whose
name occurs once in the caption (as whole words) and once among the caption's boxes.
Its hard negatives are the captions with ``label`` 0 whose ``cpt_p_id`` is its id and that
say what was ``replaced``: the replaced words must occur once in the true caption and
the replacement once in the negative; the box is that of the object whose name is the
replaced word (an object swap) or, for an attribute, of the object named nearest after
it (the only object when there is one). GQA boxes are ``x, y, w, h`` in pixels.
"""

import json
import os
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Tuple

from captum_bilinear.datasets.base import (
    IMAGE_EXTENSIONS,
    Box,
    Dataset,
    DatasetObject,
    Example,
    HardNegative,
    check_directory,
    check_file,
    find_words,
    image_loader,
)


def _boxes(entry: Mapping[str, Any]) -> List[Tuple[str, Box]]:
    boxes = []
    for value in (entry.get("bboxes") or {}).values():
        box = value.get("bbox") or {}
        try:
            x, y, w, h = (float(box[key]) for key in ("x", "y", "w", "h"))
        except (KeyError, TypeError, ValueError):
            continue
        if w > 0 and h > 0 and value.get("name"):
            boxes.append((str(value["name"]), (x, y, x + w, y + h)))
    return boxes


def _once(caption: str, words: str) -> Optional[Tuple[int, int]]:
    found = find_words(caption, words)
    return found[0] if len(found) == 1 else None


def _negative_box(caption: str, original_span: Tuple[int, int], original: str,
                  objects: List[Tuple[str, Box]]) -> Optional[Box]:
    if len(objects) == 1:
        return objects[0][1]
    by_name = [box for name, box in objects if name.lower() == original.lower()]
    if len(by_name) == 1:
        return by_name[0]
    after = []
    for name, box in objects:
        span = _once(caption, name)
        if span is not None and span[0] >= original_span[1]:
            after.append((span[0], box))
    return min(after)[1] if after else None


def read_hnc(annotations: str, images: str) -> Dataset:
    """The true captions of an HNC file with their objects and hard negatives.

    Args:
        annotations: an HNC JSON file (e.g. ``hnc_clean_strict_test.json``).
        images: the folder of GQA's images (``{image id}.jpg``).

    Returns:
        A :class:`~captum_bilinear.datasets.Dataset` named ``"hnc"``; ``example_id`` is
        ``"{image id}#{caption id}"``; each example has its objects and its usable hard
        negatives.

    Example:
        >>> import json, os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> box = {"1": {"bbox": {"x": 0, "y": 0, "w": 20, "h": 10}, "name": "car"}}
        >>> data = {"img1": {"captions": {
        ...     "0": {"caption": "the red car", "label": 1, "bboxes": box},
        ...     "1": {"caption": "the blue car", "label": 0, "cpt_p_id": 0, "type": "attribute",
        ...           "replaced": ["red", "blue"], "bboxes": box}}}}
        >>> path = os.path.join(folder, "hnc.json"); json.dump(data, open(path, "w"))
        >>> example = read_hnc(path, folder)[0]
        >>> example.objects[0].span, example.negatives[0].span, example.negatives[0].box
        ((8, 11), (4, 8), (0.0, 0.0, 20.0, 10.0))
    """
    with open(check_file(annotations, "annotations"), encoding="utf-8") as handle:
        data = json.load(handle)
    images = check_directory(images, "images")
    if not isinstance(data, Mapping):
        raise ValueError(f"annotations: expected a JSON object image id -> captions, got {type(data).__name__}")
    statistics: Counter = Counter()
    examples: List[Example] = []
    for image_id, entry in data.items():
        captions: Dict[str, Any] = entry.get("captions", entry) if isinstance(entry, Mapping) else {}
        negatives_of: Dict[str, List[Dict[str, Any]]] = {}
        for caption_id, caption_entry in captions.items():
            if isinstance(caption_entry, Mapping) and int(caption_entry.get("label", 1)) == 0:
                negatives_of.setdefault(str(caption_entry.get("cpt_p_id")), []).append(caption_entry)
        for caption_id, caption_entry in captions.items():
            if not isinstance(caption_entry, Mapping) or int(caption_entry.get("label", 1)) != 1:
                continue
            caption = str(caption_entry.get("caption") or "").strip()
            statistics["true captions"] += 1
            boxes = _boxes(caption_entry)
            names = Counter(name.lower() for name, _ in boxes)
            objects = []
            for name, box in boxes:
                span = _once(caption, name)
                if span is None or names[name.lower()] != 1:
                    statistics["boxes not named once"] += 1
                    continue
                objects.append(DatasetObject(span, box, name))
            negatives = []
            for negative in negatives_of.get(str(caption_id), []):
                statistics["hard negatives"] += 1
                replaced = negative.get("replaced")
                negative_caption = str(negative.get("caption") or "").strip()
                if not replaced or len(replaced) != 2:
                    statistics["hard negatives without a replacement"] += 1
                    continue
                original, replacement = str(replaced[0]), str(replaced[1])
                original_span, span = _once(caption, original), _once(negative_caption, replacement)
                box = None if original_span is None else _negative_box(caption, original_span, original, boxes)
                if span is None or box is None:
                    statistics["hard negatives whose words or box cannot be placed"] += 1
                    continue
                negatives.append(HardNegative(negative_caption, span, original_span, box,
                                              str(negative.get("type") or "other"), (original, replacement)))
            if not objects and not negatives:
                statistics["true captions without objects or negatives"] += 1
                continue
            examples.append(Example(f"{image_id}#{caption_id}", len(examples), str(image_id), caption, tuple(objects),
                                    image_loader(os.path.join(images, str(image_id)), IMAGE_EXTENSIONS),
                                    tuple(negatives)))
    statistics["objects"] = sum(len(e.objects) for e in examples)
    statistics["usable hard negatives"] = sum(len(e.negatives) for e in examples)
    return Dataset("hnc", examples, dict(statistics), {"annotations": annotations, "images": images})
