"""The bundled demo world written out as COCO and Flickr30k Entities, at any resolution.

A known-answer check for a pipeline: the exported scenes are read back by the readers of
this package (or by yours), and every named object, box and caption is known. Images are
scaled by an integer ``scale`` with nearest-neighbour sampling (a model that resizes them
back sees nearly the original scene) and saved as PNG; boxes are scaled with them.
Objects the caption does not name are annotated too (they are in the image).
"""

import json
import os
import xml.etree.ElementTree as ElementTree
from typing import Any, Dict, List, Sequence, Tuple

from captum_bilinear.datasets.demo import word_offsets


def _check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale: expected a positive int, got {scale!r}")
    return scale


def _scene_id(index: int) -> str:
    return f"scene-{index:05d}"


def _save_image(scene: Any, path: str, scale: int) -> Tuple[int, int]:
    from PIL import Image

    width, height = scene.size
    image = scene.pil().resize((width * scale, height * scale), Image.NEAREST)
    image.save(path)
    return image.size


def write_coco(scenes: Sequence[Any], out: str, scale: int = 4) -> Dict[str, str]:
    """Writes ``out/images/*.png``, ``out/captions.json`` and ``out/instances.json`` in
    COCO's format (categories: the shapes; ``bbox`` ``[x, y, w, h]``; one caption per image),
    and ``out/synonyms.json``: each shape named also by the scenes' words for it, so that
    ``read_coco(..., synonyms=paths["synonyms"])`` takes the bundled world's caption spans
    (``"small red circle"``) instead of the category word alone (``"circle"``).

    Args:
        scenes: demo scenes (e.g. :func:`~captum_bilinear.datasets.demo_scenes`).
        out: folder to write into (created).
        scale: image and box magnification.

    Returns:
        ``{"images", "captions", "instances", "synonyms"}``: the paths for
        :func:`~captum_bilinear.datasets.read_coco`.

    Example:
        >>> import json, tempfile
        >>> from captum_bilinear.datasets import demo_scenes
        >>> paths = write_coco(demo_scenes(1), tempfile.mkdtemp(), scale=4)
        >>> json.load(open(paths["instances"]))["images"][0]["width"]
        256
    """
    from captum_bilinear.zoo import SHAPES

    scale = _check_scale(scale)
    images_dir = os.path.join(out, "images")
    os.makedirs(images_dir, exist_ok=True)
    categories = [{"id": k + 1, "name": shape, "supercategory": "shape"} for k, shape in enumerate(SHAPES)]
    category_id = {shape: k + 1 for k, shape in enumerate(SHAPES)}
    images: List[Dict[str, Any]] = []
    instances: List[Dict[str, Any]] = []
    captions: List[Dict[str, Any]] = []
    for index, scene in enumerate(scenes):
        file_name = f"{_scene_id(index)}.png"
        width, height = _save_image(scene, os.path.join(images_dir, file_name), scale)
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        captions.append({"id": index + 1, "image_id": image_id, "caption": scene.caption})
        for obj in scene.all_objects:
            x0, y0, x1, y1 = (scale * v for v in obj.box)
            instances.append({
                "id": len(instances) + 1, "image_id": image_id, "category_id": category_id[obj.shape],
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
                "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
            })
    paths = {"images": images_dir, "captions": os.path.join(out, "captions.json"),
             "instances": os.path.join(out, "instances.json"), "synonyms": os.path.join(out, "synonyms.json")}
    with open(paths["captions"], "w", encoding="utf-8") as handle:
        json.dump({"images": images, "annotations": captions}, handle)
    with open(paths["instances"], "w", encoding="utf-8") as handle:
        json.dump({"images": images, "annotations": instances, "categories": categories}, handle)
    # Each shape named also by the scenes' words for it ("small red circle"): with these
    # synonyms the caption spans are the bundled world's (longer names win), without them
    # the category word only, as in real COCO.
    phrases: Dict[str, set] = {shape: {shape} for shape in SHAPES}
    for scene in scenes:
        for obj in scene.objects:
            phrases[obj.shape].add(" ".join(obj.words))
    with open(paths["synonyms"], "w", encoding="utf-8") as handle:
        json.dump({shape: sorted(words) for shape, words in phrases.items()}, handle, indent=1)
    return paths


def marked_sentence(scene: Any) -> str:
    """The scene's caption with Flickr30k Entities markup around each named object's
    words (entity ``k + 1`` for ``scene.objects[k]``, type ``other``).

    Example:
        >>> from captum_bilinear.datasets import demo_scenes
        >>> marked_sentence(demo_scenes(1)[0])
        'there is a [/EN#1/other small star] in the picture'
    """
    from captum_bilinear.zoo import words_to_caption

    caption = words_to_caption(scene.words)
    offsets = word_offsets(scene.words)
    marks: List[Tuple[int, int, int]] = []
    for k, obj in enumerate(scene.objects):
        start, stop = obj.span
        marks.append((offsets[start - 1][0], offsets[stop - 2][1], k + 1))
    text, position = [], 0
    for start, stop, entity in sorted(marks):
        text.append(caption[position:start])
        text.append(f"[/EN#{entity}/other {caption[start:stop]}]")
        position = stop
    text.append(caption[position:])
    return "".join(text)


def write_flickr30k_entities(scenes: Sequence[Any], out: str, scale: int = 4, split: str = "test") -> Dict[str, str]:
    """Writes ``out/Sentences/*.txt``, ``out/Annotations/*.xml`` (VOC style, 1-based
    inclusive boxes), ``out/{split}.txt`` and ``out/images/*.png``.

    Args:
        scenes: demo scenes.
        out: folder to write into (created).
        scale: image and box magnification.
        split: the split file to write.

    Returns:
        ``{"root", "images"}`` for :func:`~captum_bilinear.datasets.read_flickr30k_entities`.

    Example:
        >>> import os, tempfile
        >>> from captum_bilinear.datasets import demo_scenes
        >>> paths = write_flickr30k_entities(demo_scenes(1), tempfile.mkdtemp())
        >>> sorted(os.listdir(paths["root"]))
        ['Annotations', 'Sentences', 'images', 'test.txt']
    """
    scale = _check_scale(scale)
    for folder in ("Sentences", "Annotations", "images"):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
    ids = []
    for index, scene in enumerate(scenes):
        image_id = _scene_id(index)
        ids.append(image_id)
        width, height = _save_image(scene, os.path.join(out, "images", f"{image_id}.png"), scale)
        with open(os.path.join(out, "Sentences", f"{image_id}.txt"), "w", encoding="utf-8") as handle:
            handle.write(marked_sentence(scene) + "\n")
        root = ElementTree.Element("annotation")
        ElementTree.SubElement(root, "filename").text = f"{image_id}.png"
        size = ElementTree.SubElement(root, "size")
        for tag, value in (("width", width), ("height", height), ("depth", 3)):
            ElementTree.SubElement(size, tag).text = str(value)
        for entity, obj in enumerate(scene.all_objects, start=1):
            element = ElementTree.SubElement(root, "object")
            ElementTree.SubElement(element, "name").text = str(entity)
            bndbox = ElementTree.SubElement(element, "bndbox")
            x0, y0, x1, y1 = (scale * int(v) for v in obj.box)
            for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
                ElementTree.SubElement(bndbox, tag).text = str(value)
        ElementTree.ElementTree(root).write(os.path.join(out, "Annotations", f"{image_id}.xml"), encoding="utf-8")
    with open(os.path.join(out, f"{split}.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(ids) + "\n")
    return {"root": out, "images": os.path.join(out, "images")}
