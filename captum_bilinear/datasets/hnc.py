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
from captum_bilinear.datasets.files import FileContext


def _boxes(context: FileContext, entry: Mapping[str, Any], where: str, statistics: Counter) -> List[Tuple[str, Box]]:
    boxes = []
    found = context.field(entry, "bboxes", where, 'an object {OBJECT_ID: {"bbox", "name"}}', dict, default=None,
                          allow_none=True)
    for object_id, value in (found or {}).items():
        place = f'{where}: "bboxes": {object_id}'
        box = context.field(value, "bbox", place, 'an object {"x", "y", "w", "h"}', dict)
        name = context.field(value, "name", place, "the object's name, a string", str)
        x, y, w, h = (context.number(box.get(key), place, f'"bbox": "{key}"') for key in ("x", "y", "w", "h"))
        if w <= 0 or h <= 0 or not name.strip():
            statistics["boxes empty or without a name"] += 1
            continue
        boxes.append((name.strip(), (x, y, x + w, y + h)))
    return boxes


def _label(context: FileContext, entry: Mapping[str, Any], where: str) -> int:
    """``"label"``: 1 (a true caption, the default) or 0 (a hard negative)."""
    label = entry.get("label", 1)
    if isinstance(label, str) and label.strip() in ("0", "1"):
        label = int(label)
    if isinstance(label, bool) or (isinstance(label, float) and label in (0.0, 1.0)):
        label = int(label)
    if isinstance(label, float) or label not in (0, 1):
        raise context.error(where, f'"label" is {label!r}, expected 1 (a true caption) or 0 (a hard negative)')
    return int(label)


def _captions_of(context: FileContext, image_id: str, entry: Any) -> Mapping[str, Mapping[str, Any]]:
    """An image's captions, ``"captions"`` level or not, each checked to be an object with a
    caption string."""
    where = f"image {image_id}"
    entry = context.mapping(entry, where, 'an object {"captions": {CAPTION_ID: {...}}}')
    captions = entry.get("captions", entry)
    captions = context.mapping(captions, f"{where}: \"captions\"" if "captions" in entry else where,
                               "an object CAPTION_ID -> {\"caption\", \"label\", ...}")
    for caption_id, caption_entry in captions.items():
        place = f"{where}: caption {caption_id}"
        context.mapping(caption_entry, place, 'an object {"caption", "label", "bboxes", ...}')
        caption = context.field(caption_entry, "caption", place, "the caption, a string", str)
        if not caption.strip():
            raise context.error(place, '"caption" is empty')
    return captions


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
    context = FileContext("annotations", check_file(annotations, "annotations"))
    data = context.mapping(context.json(), "", "a JSON object IMAGE_ID -> {\"captions\": {...}} (an HNC file)")
    images = check_directory(images, "images")
    statistics: Counter = Counter()
    examples: List[Example] = []
    for image_id, entry in data.items():
        captions = _captions_of(context, image_id, entry)
        negatives_of: Dict[str, List[Tuple[str, Mapping[str, Any]]]] = {}
        for caption_id, caption_entry in captions.items():
            if _label(context, caption_entry, f"image {image_id}: caption {caption_id}") == 0:
                negatives_of.setdefault(str(caption_entry.get("cpt_p_id")), []).append((caption_id, caption_entry))
        for caption_id, caption_entry in captions.items():
            where = f"image {image_id}: caption {caption_id}"
            if _label(context, caption_entry, where) != 1:
                continue
            caption = caption_entry["caption"].strip()
            statistics["true captions"] += 1
            boxes = _boxes(context, caption_entry, where, statistics)
            names = Counter(name.lower() for name, _ in boxes)
            objects = []
            for name, box in boxes:
                span = _once(caption, name)
                if span is None or names[name.lower()] != 1:
                    statistics["boxes not named once"] += 1
                    continue
                objects.append(DatasetObject(span, box, name))
            negatives = []
            for negative_id, negative in negatives_of.get(str(caption_id), []):
                statistics["hard negatives"] += 1
                place = f"image {image_id}: caption {negative_id}"
                replaced = context.field(negative, "replaced", place, "[original words, replacement]", list,
                                         default=None, allow_none=True)
                negative_caption = negative["caption"].strip()
                if not replaced or len(replaced) != 2:
                    statistics["hard negatives without a replacement"] += 1
                    continue
                if not all(isinstance(words, str) for words in replaced):
                    raise context.error(place, f'"replaced" is {replaced!r}, expected [original words, replacement]')
                original, replacement = replaced[0], replaced[1]
                original_span, negative_span = _once(caption, original), _once(negative_caption, replacement)
                negative_box = None if original_span is None else _negative_box(caption, original_span, original, boxes)
                if original_span is None or negative_span is None or negative_box is None:
                    statistics["hard negatives whose words or box cannot be placed"] += 1
                    continue
                kind = negative.get("type")
                negatives.append(HardNegative(negative_caption, negative_span, original_span, negative_box,
                                              kind if isinstance(kind, str) and kind else "other",
                                              (original, replacement)))
            if not objects and not negatives:
                statistics["true captions without objects or negatives"] += 1
                continue
            examples.append(Example(f"{image_id}#{caption_id}", len(examples), str(image_id), caption, tuple(objects),
                                    image_loader(os.path.join(images, str(image_id)), IMAGE_EXTENSIONS),
                                    tuple(negatives)))
    statistics["objects"] = sum(len(e.objects) for e in examples)
    statistics["usable hard negatives"] = sum(len(e.negatives) for e in examples)
    return Dataset("hnc", examples, dict(statistics), {"annotations": annotations, "images": images})
