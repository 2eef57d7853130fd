"""MS-COCO: captions and instances, the objects a caption names (exCLIP §4.2's filter).

Layout (any folder and file names; what is read, other keys are ignored)::

    images/                       000000397133.jpg ...   (the ``file_name`` of each image)
    captions_val2017.json         {"annotations": [{"id", "image_id", "caption"}],
                                   "images": [{"id", "file_name"}]            (optional here)}
    instances_val2017.json        {"images": [{"id", "file_name", "width", "height"}],
                                   "categories": [{"id", "name"}],
                                   "annotations": [{"image_id", "category_id", "bbox": [x, y, w, h],
                                                    "iscrowd" (optional, 0)}]}

A caption's ``id`` is its example's id; its image's ``file_name`` is looked up in either
file's ``"images"`` (``width`` / ``height``, optional, say in which frame the boxes of
a photo with an EXIF orientation are). A file that departs from this layout -- not
UTF-8, a JSON syntax error, a missing key, a null caption, a category id that is not
among the categories -- is refused with one error naming the file and the entry.

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

import os
from collections import Counter
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from captum_bilinear.datasets.base import (
    Dataset,
    DatasetObject,
    Example,
    check_directory,
    check_file,
    image_loader,
    word_pattern,
)
from captum_bilinear.datasets.files import ID_TYPES, FileContext, entry_label, optional_size

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
        source = FileContext("synonyms", check_file(source, "synonyms")).json()
    if not isinstance(source, Mapping):
        raise TypeError(f"synonyms: expected a mapping category -> words, a JSON file or None, got {type(source).__name__}")
    result: Dict[str, List[str]] = {}
    for category, words in source.items():
        if isinstance(words, str) or not isinstance(words, (list, tuple)) or not all(
                isinstance(w, str) and w.strip() for w in words):
            raise ValueError(f"synonyms: expected a list of words for {category!r}, got {words!r}")
        result[str(category)] = list(words)
    return result


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


class _CocoImage(NamedTuple):
    file_name: str
    size: Optional[Tuple[int, int]]


def _images(context: FileContext, data: Mapping, required: bool) -> Dict[Any, _CocoImage]:
    """``id -> (file_name, (width, height) or None)`` of a COCO file's ``"images"``."""
    images: Dict[Any, _CocoImage] = {}
    entries = context.field(data, "images", "", 'a list of {"id", "file_name", "width", "height"}', list,
                            default=None if not required else ...)
    for index, entry in enumerate(entries or []):
        where = f"images{entry_label(entry, index)}"
        image_id = context.field(entry, "id", where, "the image's id, an int", ID_TYPES)
        file_name = context.field(entry, "file_name", where, "the image's file name in --images, a string", str)
        if not file_name.strip():
            raise context.error(where, '"file_name" is empty')
        size = optional_size(entry.get("width"), entry.get("height"))
        if image_id in images and images[image_id].file_name != file_name:
            raise context.error(where, f"image id {image_id} is also the id of {images[image_id].file_name!r}")
        images[image_id] = _CocoImage(file_name, size)
    return images


def _categories(context: FileContext, data: Mapping) -> Dict[Any, str]:
    categories: Dict[Any, str] = {}
    entries = context.field(data, "categories", "", 'a list of {"id", "name"}', list)
    for index, entry in enumerate(entries):
        where = f"categories{entry_label(entry, index)}"
        category_id = context.field(entry, "id", where, "the category's id, an int", ID_TYPES)
        name = context.field(entry, "name", where, "the category's name, a string", str)
        if category_id in categories and categories[category_id] != name:
            raise context.error(where, f"category id {category_id} is also the id of {categories[category_id]!r}")
        categories[category_id] = name
    return categories


class _Instance(NamedTuple):
    category: str
    box: Tuple[float, float, float, float]  # x, y, w, h
    crowd: bool


def _instances(context: FileContext, data: Mapping, categories: Mapping[Any, str]) -> Dict[Any, List[_Instance]]:
    """image id -> its instances."""
    by_image: Dict[Any, List[_Instance]] = {}
    entries = context.field(data, "annotations", "", 'a list of {"image_id", "category_id", "bbox", "iscrowd"}', list)
    for index, entry in enumerate(entries):
        where = f"annotations{entry_label(entry, index)}"
        image_id = context.field(entry, "image_id", where, "an image's id", ID_TYPES)
        category_id = context.field(entry, "category_id", where, "a category's id", ID_TYPES)
        if category_id not in categories:
            raise context.error(where, f"category_id {category_id!r} is not among the file's \"categories\"")
        bbox = context.field(entry, "bbox", where, "[x, y, width, height] in pixels", list)
        if len(bbox) != 4:
            raise context.error(where, f"\"bbox\" has {len(bbox)} values, expected [x, y, width, height]")
        box = tuple(context.number(v, where, '"bbox"') for v in bbox)
        crowd = context.field(entry, "iscrowd", where, "0 or 1", (int, bool), default=0)
        by_image.setdefault(image_id, []).append(_Instance(categories[category_id], box, bool(crowd)))  # type: ignore[arg-type]
    return by_image


class _Caption(NamedTuple):
    example_id: str
    image_id: Any
    caption: str


def _captions(context: FileContext, data: Mapping, statistics: Counter) -> List[_Caption]:
    """The captions in caption-id order (file order among equal ids). A caption whose id
    another caption has too is kept, as ``"{id}#{k}"`` for its ``k``-th repeat."""
    entries = context.field(data, "annotations", "", 'a list of {"id", "image_id", "caption"}', list)
    read = []
    for index, entry in enumerate(entries):
        where = f"annotations{entry_label(entry, index)}"
        caption_id = context.field(entry, "id", where, "the caption's id (the example's id in the records)", ID_TYPES)
        image_id = context.field(entry, "image_id", where, "an image's id", ID_TYPES)
        caption = context.field(entry, "caption", where, "the caption, a string", str)
        if not caption.strip():
            raise context.error(where, '"caption" is empty')
        read.append((caption_id, index, image_id, caption.strip()))
    read.sort(key=lambda item: (str(type(item[0])), item[0], item[1]))
    seen: Counter = Counter()
    captions = []
    for caption_id, _, image_id, caption in read:
        repeat = seen[caption_id]
        seen[caption_id] += 1
        if repeat:
            statistics["captions sharing an id with another"] += 1
        captions.append(_Caption(str(caption_id) if not repeat else f"{caption_id}#{repeat}", image_id, caption))
    return captions


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
        the caption's id (``"{id}#{k}"`` for the ``k``-th further caption with an id
        already taken: none is lost).

    Raises:
        DatasetFileError: a file that is not UTF-8 JSON of COCO's layout (see the
            module's docstring), naming the file and the entry.

    Example:
        >>> import tempfile
        >>> from captum_bilinear.datasets import demo_scenes, write_coco
        >>> paths = write_coco(demo_scenes(2, seed=0), tempfile.mkdtemp(), scale=2)
        >>> dataset = read_coco(paths["images"], paths["captions"], paths["instances"])
        >>> dataset.name, dataset.statistics["captions"]
        ('coco', 2)
    """
    images = check_directory(images, "images")
    captions_context = FileContext("captions", check_file(captions, "captions"))
    instances_context = FileContext("instances", check_file(instances, "instances"))
    captions_data = captions_context.mapping(captions_context.json(), "", 'a COCO captions file, a JSON object with '
                                             '"annotations": [{"id", "image_id", "caption"}]')
    instances_data = instances_context.mapping(instances_context.json(), "", 'a COCO instances file, a JSON object '
                                               'with "images", "categories" and "annotations"')
    words = coco_synonyms(synonyms)
    statistics: Counter = Counter()
    image_files = {**_images(captions_context, captions_data, required=False),
                   **_images(instances_context, instances_data, required=True)}
    categories = _categories(instances_context, instances_data)
    instances_of = _instances(instances_context, instances_data, categories)
    names = {name: words.get(name, [name]) for name in categories.values()}
    examples: List[Example] = []
    for example_id, image_id, caption in _captions(captions_context, captions_data, statistics):
        statistics["captions"] += 1
        if image_id not in image_files:
            statistics["captions whose image is in neither file's images"] += 1
            continue
        if image_id not in instances_of:
            statistics["captions of images without instances"] += 1
            continue
        instances_of_image = instances_of[image_id]
        counts = Counter(instance.category for instance in instances_of_image)
        objects = []
        for category, span in named_categories(caption, names).items():
            statistics["named categories"] += 1
            if counts[category] != 1:
                statistics["named, category not once in the image"] += 1
                continue
            (instance,) = [a for a in instances_of_image if a.category == category]
            if instance.crowd:
                statistics["named, category not once in the image"] += 1
                continue
            x, y, w, h = instance.box
            if w <= 0 or h <= 0:
                statistics["named, empty box"] += 1
                continue
            objects.append(DatasetObject(span, (x, y, x + w, y + h), category))
        if not objects:
            statistics["captions without a counted object"] += 1
            continue
        image = image_files[image_id]
        examples.append(Example(example_id, len(examples), str(image_id), caption, tuple(objects),
                                image_loader(os.path.join(images, image.file_name), size=image.size)))
    statistics["objects"] = sum(len(e.objects) for e in examples)
    return Dataset("coco", examples, dict(statistics),
                   {"images": images, "captions": captions, "instances": instances,
                    "synonyms": synonyms if isinstance(synonyms, str) else ("shipped" if synonyms is None else "given")})
