"""What every dataset reader yields: image-caption pairs with their named objects.

An :class:`Example` is one image-caption pair. Its objects are given in the dataset's
own terms -- a character span of the caption and a pixel box of the *original* image --
so a reader never needs a model; :func:`captum_bilinear.datasets.prepare_example` maps
them into a model's tokens and pixels. Images are loaded only when asked for.

Conventions: character spans ``(start, stop)`` index ``caption[start:stop]``; boxes are
``(x0, y0, x1, y1)`` in pixels, end exclusive (the package's convention, see
:mod:`captum_bilinear.selection`), in the original image.
"""

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

Box = Tuple[float, float, float, float]
Span = Tuple[int, int]


@dataclass(frozen=True)
class DatasetObject:
    """A named object of a caption: where the caption names it and where it is.

    Attributes:
        span: ``(start, stop)`` characters of the caption that name the object.
        box: ``(x0, y0, x1, y1)`` in the original image's pixels, end exclusive.
        category: the dataset's class of the object (a COCO category, a Flickr30k
            Entities phrase type, an HNC object name, a demo shape).
    """

    span: Span
    box: Box
    category: str


@dataclass(frozen=True)
class HardNegative:
    """A caption false for the image because one word was swapped (HNC, the demo world).

    Attributes:
        caption: the false caption.
        span: characters of the replacement in ``caption``.
        original_span: characters of the replaced words in the true caption.
        box: the box of the object the swap is about (original pixels).
        category: what was swapped (HNC's caption type, the demo's attribute).
        swap: ``(original words, replacement)``.
    """

    caption: str
    span: Span
    original_span: Span
    box: Box
    category: str
    swap: Tuple[str, str]


@dataclass(frozen=True)
class Example:
    """One image-caption pair of a dataset.

    Attributes:
        example_id: unique within the dataset and stable across runs (records and
            ``--resume`` use it).
        index: the example's position in the dataset (per-example random seeds derive
            from it, never from the process that runs it).
        image_id: the image's id in the dataset.
        caption: the caption.
        objects: the named objects that passed the dataset's filters.
        negatives: hard-negative captions for the same image.
        load: ``load() -> PIL.Image`` (RGB); call :meth:`image`.
    """

    example_id: str
    index: int
    image_id: str
    caption: str
    objects: Tuple[DatasetObject, ...]
    load: Callable[[], Any] = field(repr=False, compare=False)
    negatives: Tuple[HardNegative, ...] = ()

    def image(self) -> Any:
        """The image as an RGB PIL image (read now, not kept)."""
        return self.load().convert("RGB")

    def phrase(self, obj: DatasetObject) -> str:
        """The words of the caption that name ``obj``."""
        return self.caption[obj.span[0] : obj.span[1]]


@dataclass
class Dataset:
    """The examples of one dataset and what its filters kept.

    Attributes:
        name: ``"coco"``, ``"flickr30k-entities"``, ``"hnc"`` or ``"demo"``.
        examples: the image-caption pairs with at least one object (or hard negative).
        statistics: counts of what was read and dropped, by reason.
        source: what was read (paths, options), for ``results.json``.

    Example:
        >>> from captum_bilinear.datasets import demo_dataset
        >>> dataset = demo_dataset(3, seed=0)
        >>> len(dataset), dataset[0].example_id
        (3, 'scene-00000')
    """

    name: str
    examples: List[Example]
    statistics: Dict[str, int] = field(default_factory=dict)
    source: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> Example:
        return self.examples[index]

    def __iter__(self):
        return iter(self.examples)

    def by_id(self) -> Dict[str, Example]:
        """The examples by ``example_id``."""
        return {example.example_id: example for example in self.examples}

    @property
    def n_objects(self) -> int:
        return sum(len(example.objects) for example in self.examples)


#: Extensions tried for an image named by its id (Flickr30k, HNC), in this order.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


class ImageFile:
    """``load()`` of a dataset's image file, opened only when called: RGB, upright (see
    :func:`captum_bilinear.images.open_image`; ``size``, the ``(width, height)`` the
    dataset recorded, says whether its boxes are in the stored or the turned frame),
    with its full range of values. With ``extensions``, ``path`` has none and the first
    ``path + extension`` that exists is read. :meth:`locate` finds the file without
    reading it (the evaluation checks every file before the first pair).

    Example:
        >>> load = image_loader("no/such.jpg")   # nothing is read yet
        >>> try:
        ...     load()
        ... except FileNotFoundError as error:
        ...     print(error)
        image: no such file: no/such.jpg
    """

    def __init__(self, path: str, extensions: Sequence[str] = (), size: Optional[Tuple[int, int]] = None) -> None:
        self.path = path
        self.extensions = tuple(extensions)
        self.size = size

    def locate(self) -> str:
        """The file's path; ``FileNotFoundError`` naming it if there is none."""
        for candidate in [self.path, *(self.path + ext for ext in self.extensions)]:
            if os.path.isfile(candidate):
                return candidate
        tried = f" ({', '.join(self.extensions)})" if self.extensions else ""
        raise FileNotFoundError(f"image: no such file: {self.path}{tried}")

    def __call__(self) -> Any:
        from captum_bilinear.images import open_image

        return open_image(self.locate(), "image", self.size)


def image_loader(path: str, extensions: Sequence[str] = (), size: Optional[Tuple[int, int]] = None) -> ImageFile:
    """``load()`` of an image file (an :class:`ImageFile`), opened only when called (clear
    error if missing). With ``extensions``, ``path`` has none and the first ``path +
    extension`` that exists is read; ``size``: the ``(width, height)`` the dataset
    recorded for it (see :class:`ImageFile`).

    Example:
        >>> load = image_loader("no/such.jpg")   # nothing is read yet
        >>> try:
        ...     load.locate()
        ... except FileNotFoundError as error:
        ...     print(error)
        image: no such file: no/such.jpg
    """
    return ImageFile(path, extensions, size)


def word_pattern(words: str) -> "re.Pattern[str]":
    """A case-insensitive pattern for ``words`` as whole words: punctuation may touch
    them (``"dog,"``, ``"dog's"``), letters and digits may not (``"hotdog"``), and any
    run of white space matches a space.

    Example:
        >>> [m.span() for m in word_pattern("hot dog").finditer("A hot  dog, not a hotdog.")]
        [(2, 10)]
    """
    body = r"\s+".join(re.escape(part) for part in words.split())
    return re.compile(rf"(?<![\w]){body}(?![\w])", re.IGNORECASE)


def find_words(caption: str, words: str) -> List[Span]:
    """Every whole-word occurrence of ``words`` in ``caption`` (see :func:`word_pattern`).

    Example:
        >>> find_words("A dog. Another Dog!", "dog")
        [(2, 5), (15, 18)]
    """
    return [match.span() for match in word_pattern(words).finditer(caption)]


def check_directory(path: Any, name: str) -> str:
    """``path`` if it is a directory, else ``ValueError`` naming the argument."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.isdir(path):
        raise ValueError(f"{name}: expected a directory, got {path!r}")
    return os.fspath(path)


def check_file(path: Any, name: str) -> str:
    """``path`` if it is a file, else ``ValueError`` naming the argument."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise ValueError(f"{name}: expected a file, got {path!r}")
    return os.fspath(path)


def limited(examples: Sequence[Example], limit: Optional[int]) -> List[Example]:
    """The first ``limit`` examples (all for ``None``)."""
    return list(examples) if limit is None else list(examples)[:limit]
