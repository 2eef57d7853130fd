"""Flickr30k Entities: phrases of the captions with their boxes.

Layout (``--root``; the images may be elsewhere, ``--images``)::

    ROOT/Sentences/1000092795.txt     five captions, one a line, phrases marked
                                      "[/EN#18/people A man] in [/EN#21/clothing an orange hat]"
    ROOT/Annotations/1000092795.xml   VOC style: <size>, and per box <object> with one or more
                                      <name>ENTITY</name> and <bndbox> xmin..ymax (1-based, inclusive)
    ROOT/train.txt  val.txt  test.txt image ids of each split, one a line
    IMAGES/1000092795.jpg              (.jpeg and .png are found as well)

Every caption is one example. A phrase counts when its entity has exactly one box (a
phrase such as "two dogs" with several boxes, or one without a box -- ``nobndbox``,
``scene`` -- is left out). Boxes are converted to 0-based, end-exclusive pixels:
``(xmin - 1, ymin - 1, xmax, ymax)``. The category is the phrase's first type.
"""

import os
import re
from collections import Counter
from typing import Dict, List, Tuple

from captum_bilinear.datasets.base import (
    IMAGE_EXTENSIONS,
    Box,
    Dataset,
    DatasetObject,
    Example,
    check_directory,
    check_file,
    image_loader,
)
from captum_bilinear.datasets.files import FileContext, optional_size

SPLITS = ("train", "val", "test")

_PHRASE = re.compile(r"\[/EN#(?P<entity>\d+)(?P<types>(?:/[^\s\]]+)*)\s+(?P<phrase>[^\]]*)\]")


def parse_sentence(line: str) -> Tuple[str, List[Tuple[Tuple[int, int], str, Tuple[str, ...]]]]:
    """A marked-up Flickr30k Entities sentence -> ``(caption, phrases)``.

    Returns:
        The caption without markup, and per phrase ``((start, stop), entity id,
        types)`` with character offsets into the caption.

    Example:
        >>> parse_sentence("[/EN#18/people A man] in [/EN#21/clothing/other an orange hat] .")
        ('A man in an orange hat .', [((0, 5), '18', ('people',)), ((9, 22), '21', ('clothing', 'other'))])
    """
    caption, phrases, position = [], [], 0
    for match in _PHRASE.finditer(line):
        caption.append(line[position : match.start()])
        start = sum(len(part) for part in caption)
        phrase = match.group("phrase")
        caption.append(phrase)
        types = tuple(t for t in match.group("types").split("/") if t)
        phrases.append(((start, start + len(phrase)), match.group("entity"), types))
        position = match.end()
    caption.append(line[position:])
    return "".join(caption), phrases


def parse_annotation(path: str) -> Tuple[Tuple[int, int], Dict[str, List[Box]]]:
    """A Flickr30k Entities ``Annotations/*.xml`` -> ``((width, height), entity -> boxes)``,
    boxes 0-based and end-exclusive (entities without a box are absent).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "1.xml")
        >>> _ = open(path, "w").write("<annotation><size><width>10</width><height>8</height></size>"
        ...     "<object><name>3</name><name>4</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>5</xmax>"
        ...     "<ymax>8</ymax></bndbox></object></annotation>")
        >>> parse_annotation(path)
        ((10, 8), {'3': [(0.0, 1.0, 5.0, 8.0)], '4': [(0.0, 1.0, 5.0, 8.0)]})
    """
    context = FileContext("root", path)
    root = context.xml()
    size = root.find("size")
    dimensions = []
    for tag in ("width", "height"):
        text = size.findtext(tag) if size is not None else None
        dimensions.append(0 if text is None or not text.strip() else int(context.number(text, "<size>", f"<{tag}>")))
    boxes: Dict[str, List[Box]] = {}
    for number, element in enumerate(root.findall("object")):
        bndbox = element.find("bndbox")
        if bndbox is None:
            continue
        where = f"<object> {number + 1}"
        xmin, ymin, xmax, ymax = (context.number(bndbox.findtext(tag), where, f"<{tag}>")
                                  for tag in ("xmin", "ymin", "xmax", "ymax"))
        for name in element.findall("name"):
            entity = (name.text or "").strip()
            if not entity:
                raise context.error(where, "a <name> is empty, expected the entity's number")
            boxes.setdefault(entity, []).append((xmin - 1, ymin - 1, xmax, ymax))
    return (dimensions[0], dimensions[1]), boxes


def read_split_ids(root: str, split: str) -> List[str]:
    """The image ids listed in ``ROOT/{split}.txt`` (blank lines skipped)."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    return FileContext("root", check_file(os.path.join(root, f"{split}.txt"), "split")).lines()


def read_flickr30k_entities(root: str, images: str, split: str = "test") -> Dataset:
    """The captions of a Flickr30k Entities split with their single-box phrases.

    Args:
        root: the folder with ``Sentences/``, ``Annotations/`` and the split files.
        images: the folder of ``{image id}.jpg``.
        split: ``"train"``, ``"val"`` or ``"test"``.

    Returns:
        A :class:`~captum_bilinear.datasets.Dataset` named ``"flickr30k-entities"``;
        ``example_id`` is ``"{image id}#{caption number}"``.

    Example:
        >>> import tempfile
        >>> from captum_bilinear.datasets import demo_scenes, write_flickr30k_entities
        >>> paths = write_flickr30k_entities(demo_scenes(2, seed=0), tempfile.mkdtemp(), scale=2)
        >>> dataset = read_flickr30k_entities(paths["root"], paths["images"], "test")
        >>> dataset[0].example_id
        'scene-00000#0'
    """
    root = check_directory(root, "root")
    images = check_directory(images, "images")
    statistics: Counter = Counter()
    examples: List[Example] = []
    for image_id in read_split_ids(root, split):
        sentences = os.path.join(root, "Sentences", f"{image_id}.txt")
        annotation = os.path.join(root, "Annotations", f"{image_id}.xml")
        if not os.path.isfile(sentences) or not os.path.isfile(annotation):
            statistics["images without sentences or annotations"] += 1
            continue
        size, boxes = parse_annotation(annotation)
        for number, line in enumerate(FileContext("root", sentences).lines()):
            caption, phrases = parse_sentence(line)
            statistics["captions"] += 1
            objects = []
            for span, entity, types in phrases:
                statistics["phrases"] += 1
                entity_boxes = boxes.get(entity, [])
                if len(entity_boxes) != 1:
                    statistics["phrases without a box" if not entity_boxes else "phrases with several boxes"] += 1
                    continue
                objects.append(DatasetObject(span, entity_boxes[0], types[0] if types else "other"))
            if not objects:
                statistics["captions without a single-box phrase"] += 1
                continue
            examples.append(Example(f"{image_id}#{number}", len(examples), image_id, caption, tuple(objects),
                                    image_loader(os.path.join(images, image_id), IMAGE_EXTENSIONS, optional_size(*size))))
    statistics["objects"] = sum(len(e.objects) for e in examples)
    return Dataset("flickr30k-entities", examples, dict(statistics), {"root": root, "images": images, "split": split})
