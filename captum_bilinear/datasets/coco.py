"""MS-COCO: captions and instances, the objects a caption names (exCLIP §4.2's filter).

Layout (any folder names)::

    images/                       000000397133.jpg ...   (the ``file_name`` of each image)
    captions_val2017.json         {"images": [...], "annotations": [{"id", "image_id", "caption"}]}
    instances_val2017.json        {"images", "categories": [{"id", "name"}],
                                   "annotations": [{"id", "image_id", "category_id", "bbox": [x, y, w, h], "iscrowd"}]}

Every caption is one example. An object of the image counts for a caption when

* its category occurs exactly once in the image (counting crowd annotations, which
  stand for many instances; a crowd annotation itself never counts),
* the caption names it: the category name or one of its synonyms as whole words,
  case-insensitive, punctuation allowed next to it (``"dog,"``); longer names win where
  names overlap (``"hot dog"`` is a hot dog, not a dog); the first mention is the span,
* and (checked later, by :func:`~captum_bilinear.datasets.prepare_example`) its box in the
  model's pixels is larger than one patch.

The synonyms ship with the package (``coco_synonyms.json``: category -> words; a
category not in it is matched by its name) and can be replaced by any such mapping.
"""

import contextlib
import io
import json
import os
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from captum_bilinear.datasets.base import (
    Dataset,
    DatasetObject,
    Example,
    check_directory,
    check_file,
    image_loader,
    word_pattern,
)

#: The synonyms that ship with the package.
SYNONYMS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "coco_synonyms.json")


def coco_synonyms(source: Union[None, str, Mapping[str, Sequence[str]]] = None) -> Dict[str, List[str]]:
    """The category -> words mapping: the shipped one (``None``), a JSON file, or a mapping.

    Example:
        >>> coco_synonyms()["dog"]
        ['dog', 'puppy', 'pup']
        >>> coco_synonyms({"dog": ["hound"]})
        {'dog': ['hound']}
    """
    if source is None:
        source = SYNONYMS_FILE
    if isinstance(source, (str, os.PathLike)):
        with open(check_file(source, "synonyms"), encoding="utf-8") as handle:
            source = json.load(handle)
    if not isinstance(source, Mapping):
        raise TypeError(f"synonyms: expected a mapping category -> words, a JSON file or None, got {type(source).__name__}")
    result: Dict[str, List[str]] = {}
    for category, words in source.items():
        if isinstance(words, str) or not all(isinstance(w, str) and w.strip() for w in words):
            raise ValueError(f"synonyms: expected a list of words for {category!r}, got {words!r}")
        result[str(category)] = list(words)
    return result


def _quiet_coco(path: str) -> Any:
    """``pycocotools.coco.COCO(path)`` without its progress prints."""
    try:
        from pycocotools.coco import COCO
    except ImportError as error:  # an optional extra
        raise ImportError("the COCO reader needs pycocotools: pip install 'captum-bilinear[datasets]'") from error
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(path)


def named_categories(caption: str, names: Mapping[str, Sequence[str]]) -> Dict[str, Tuple[int, int]]:
    """The first mention of each category the caption names, longest names first (a span
    taken by a longer name is not matched again by a shorter one).

    Args:
        caption: the caption.
        names: category -> the words that name it.

    Returns:
        category -> ``(start, stop)`` characters.

    Example:
        >>> named_categories("A hot dog and a dog.", {"dog": ["dog"], "hot dog": ["hot dog"]})
        {'hot dog': (2, 9), 'dog': (16, 19)}
    """
    candidates = sorted(((word, category) for category, words in names.items() for word in words),
                        key=lambda item: -len(item[0]))
    taken: List[Tuple[int, int]] = []
    found: Dict[str, Tuple[int, int]] = {}
    for word, category in candidates:
        for match in word_pattern(word).finditer(caption):
            start, stop = match.span()
            if any(start < end and stop > begin for begin, end in taken):
                continue
            taken.append((start, stop))
            if category not in found or start < found[category][0]:
                found[category] = (start, stop)
    return dict(sorted(found.items(), key=lambda item: item[1][0]))


def read_coco(
    images: str,
    captions: str,
    instances: str,
    synonyms: Union[None, str, Mapping[str, Sequence[str]]] = None,
) -> Dataset:
    """The image-caption pairs of a COCO split with the objects their captions name.

    Args:
        images: the folder of the split's images.
        captions: ``captions_*.json``.
        instances: ``instances_*.json`` of the same images.
        synonyms: category -> words (see :func:`coco_synonyms`; default the shipped ones).

    Returns:
        A :class:`~captum_bilinear.datasets.Dataset` named ``"coco"``: one example per
        caption that names at least one object, in caption-id order, ``example_id``
        the caption's id.

    Example:
        >>> import tempfile
        >>> from captum_bilinear.datasets import demo_scenes, write_coco
        >>> paths = write_coco(demo_scenes(2, seed=0), tempfile.mkdtemp(), scale=2)
        >>> dataset = read_coco(paths["images"], paths["captions"], paths["instances"])
        >>> dataset.name, dataset.statistics["captions"]
        ('coco', 2)
    """
    images = check_directory(images, "images")
    captions_index = _quiet_coco(check_file(captions, "captions"))
    instances_index = _quiet_coco(check_file(instances, "instances"))
    words = coco_synonyms(synonyms)
    categories = {c["id"]: c["name"] for c in instances_index.loadCats(instances_index.getCatIds())}
    names = {name: words.get(name, [name]) for name in categories.values()}
    statistics: Counter = Counter()
    examples: List[Example] = []
    for caption_id in sorted(captions_index.anns):
        annotation = captions_index.anns[caption_id]
        image_id = annotation["image_id"]
        caption = annotation["caption"].strip()
        statistics["captions"] += 1
        if image_id not in instances_index.imgs:
            statistics["captions without instances"] += 1
            continue
        instances_of_image = instances_index.loadAnns(instances_index.getAnnIds(imgIds=[image_id]))
        counts = Counter(categories[a["category_id"]] for a in instances_of_image)
        objects = []
        for category, span in named_categories(caption, names).items():
            statistics["named categories"] += 1
            if counts[category] != 1:
                statistics["named, category not once in the image"] += 1
                continue
            (instance,) = [a for a in instances_of_image if categories[a["category_id"]] == category]
            if instance.get("iscrowd", 0):
                statistics["named, category not once in the image"] += 1
                continue
            x, y, w, h = (float(v) for v in instance["bbox"])
            if w <= 0 or h <= 0:
                statistics["named, empty box"] += 1
                continue
            objects.append(DatasetObject(span, (x, y, x + w, y + h), category))
        if not objects:
            statistics["captions without a counted object"] += 1
            continue
        file_name = instances_index.imgs[image_id]["file_name"]
        examples.append(Example(str(caption_id), len(examples), str(image_id), caption, tuple(objects),
                                image_loader(os.path.join(images, file_name))))
    statistics["objects"] = sum(len(e.objects) for e in examples)
    return Dataset("coco", examples, dict(statistics),
                   {"images": images, "captions": captions, "instances": instances,
                    "synonyms": synonyms if isinstance(synonyms, str) else ("shipped" if synonyms is None else "given")})
