"""Readers of the papers' datasets, and the bundled world through the same interface.

Each reader returns a :class:`Dataset` of :class:`Example` s: per image-caption pair the
image (loaded when asked for), the caption and its named objects (character span, pixel
box in the original image, category), with the papers' filters; HNC examples and the
demo world also carry hard negatives. :func:`prepare_example` maps an example into a
model's tokens and pixels. The writers export the demo world as COCO and Flickr30k
Entities at any resolution, a known-answer check for a pipeline.

The readers need nothing beyond the package's own dependencies; a malformed file is one
``ValueError`` naming the option, the file and the entry
(:class:`~captum_bilinear.datasets.files.DatasetFileError`).

Example:
    >>> from captum_bilinear.datasets import demo_dataset
    >>> dataset = demo_dataset(4, seed=0)
    >>> dataset.name, len(dataset), dataset.n_objects
    ('demo', 4, 4)
"""

from captum_bilinear.datasets.base import Dataset, DatasetObject, Example, HardNegative, find_words, image_loader
from captum_bilinear.datasets.coco import coco_synonyms, named_categories, read_coco
from captum_bilinear.datasets.demo import demo_dataset, demo_scenes
from captum_bilinear.datasets.flickr30k import parse_annotation, parse_sentence, read_flickr30k_entities
from captum_bilinear.datasets.hnc import read_hnc
from captum_bilinear.datasets.prepare import PreparedExample, PreparedNegative, PreparedObject, prepare_example
from captum_bilinear.datasets.writers import marked_sentence, write_coco, write_flickr30k_entities

__all__ = [
    "Dataset",
    "DatasetObject",
    "Example",
    "HardNegative",
    "PreparedExample",
    "PreparedNegative",
    "PreparedObject",
    "coco_synonyms",
    "demo_dataset",
    "demo_scenes",
    "find_words",
    "image_loader",
    "marked_sentence",
    "named_categories",
    "parse_annotation",
    "parse_sentence",
    "prepare_example",
    "read_coco",
    "read_flickr30k_entities",
    "read_hnc",
    "write_coco",
    "write_flickr30k_entities",
]
