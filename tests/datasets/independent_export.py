"""An exporter of demo scenes to COCO and Flickr30k Entities written for the tests only,
with plain ``json`` and ``ElementTree``, independently of captum_bilinear.datasets.writers
(other file names, category ids, box arithmetic), so the readers are checked against
files the package did not write."""

import json
import os
import xml.etree.ElementTree as ET

from PIL import Image

SCALE = 4


def _upscaled(scene):
    height, width = scene.image.shape[:2]
    return Image.fromarray(scene.image).resize((width * SCALE, height * SCALE), Image.NEAREST)


def export_coco(scenes, folder):
    os.makedirs(os.path.join(folder, "val"), exist_ok=True)
    shapes = sorted({o.shape for s in scenes for o in s.objects + s.unnamed_objects} | {"circle"})
    category = {shape: 100 + 7 * k for k, shape in enumerate(shapes)}  # ids that are not 1..n
    images, captions, instances = [], [], []
    for k, scene in enumerate(scenes):
        name = f"img_{k}.png"
        _upscaled(scene).save(os.path.join(folder, "val", name))
        images.append({"id": 1000 + k, "file_name": name, "width": 64 * SCALE, "height": 64 * SCALE})
        captions.append({"id": 5000 + 10 * k, "image_id": 1000 + k, "caption": scene.caption})
        for obj in list(scene.objects) + list(scene.unnamed_objects):
            x0, y0, x1, y1 = obj.box
            instances.append({"id": len(instances) + 1, "image_id": 1000 + k, "category_id": category[obj.shape],
                              "bbox": [SCALE * x0, SCALE * y0, SCALE * (x1 - x0), SCALE * (y1 - y0)],
                              "area": SCALE * SCALE * (x1 - x0) * (y1 - y0), "iscrowd": 0})
    with open(os.path.join(folder, "captions_val.json"), "w") as handle:
        json.dump({"images": images, "annotations": captions}, handle)
    with open(os.path.join(folder, "instances_val.json"), "w") as handle:
        json.dump({"images": images, "annotations": instances,
                   "categories": [{"id": i, "name": n} for n, i in category.items()]}, handle)
    return os.path.join(folder, "val"), os.path.join(folder, "captions_val.json"), os.path.join(folder, "instances_val.json")


def export_flickr(scenes, folder):
    for sub in ("Sentences", "Annotations", "flickr30k_images"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    ids = []
    for k, scene in enumerate(scenes):
        image_id = str(700000 + k)
        ids.append(image_id)
        _upscaled(scene).save(os.path.join(folder, "flickr30k_images", image_id + ".png"))
        words = list(scene.words)
        for entity, obj in enumerate(scene.objects):  # wrap each object's words in markup
            first, last = obj.span[0] - 1, obj.span[1] - 2
            words[first] = f"[/EN#{entity + 10}/other {words[first]}"
            words[last] = words[last] + "]"
        line = ""
        for word in words:
            line += word if (word == "," or not line) else " " + word
        with open(os.path.join(folder, "Sentences", image_id + ".txt"), "w") as handle:
            handle.write(line + "\n")
        root = ET.Element("annotation")
        size = ET.SubElement(root, "size")
        ET.SubElement(size, "width").text = str(64 * SCALE)
        ET.SubElement(size, "height").text = str(64 * SCALE)
        ET.SubElement(size, "depth").text = "3"
        for entity, obj in enumerate(scene.objects):
            element = ET.SubElement(root, "object")
            ET.SubElement(element, "name").text = str(entity + 10)
            box = ET.SubElement(element, "bndbox")
            x0, y0, x1, y1 = obj.box
            # VOC: 1-based, inclusive corners
            values = {"xmin": SCALE * x0 + 1, "ymin": SCALE * y0 + 1, "xmax": SCALE * x1, "ymax": SCALE * y1}
            for tag, value in values.items():
                ET.SubElement(box, tag).text = str(value)
        ET.ElementTree(root).write(os.path.join(folder, "Annotations", image_id + ".xml"))
    with open(os.path.join(folder, "test.txt"), "w") as handle:
        handle.write("\n".join(ids) + "\n")
    return folder, os.path.join(folder, "flickr30k_images")
