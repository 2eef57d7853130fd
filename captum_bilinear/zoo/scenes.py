"""Generated scenes: coloured shapes on a textured background, with captions that name
some or all of them, and for every named object its pixel box and its caption span.

A scene is a pure function of its seed, so that a training run, an evaluation and a
test can ask for the same scene again. Captions are built word by word from a closed
vocabulary (:data:`VOCABULARY`); every word (and the comma) is a single token of the
demo tokenizer, so a named object's token span is known without running a tokenizer.

Conventions:

* ``box = (x0, y0, x1, y1)`` in pixels, half-open like a slice: the object's pixels
  are ``image[y0:y1, x0:x1]``.
* ``span = (start, stop)`` is half-open and indexes the *tokenized* caption including
  the start token at position 0: ``input_ids[0, start:stop]`` are the object's
  size / colour / shape words.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

#: Shape names, in a fixed order.
SHAPES: Tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross", "star")
#: Colour names and their nominal RGB values.
COLOURS: Dict[str, Tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "green": (30, 175, 60),
    "blue": (35, 75, 225),
    "yellow": (240, 215, 30),
    "purple": (150, 50, 205),
    "orange": (250, 135, 20),
}
#: Size names and the object's extent as a fraction of the image side.
SIZES: Dict[str, Tuple[float, float]] = {"small": (0.17, 0.20), "large": (0.28, 0.33)}
#: Spatial relations used in captions (words of each phrase).
RELATIONS: Dict[str, Tuple[str, ...]] = {
    "left": ("left", "of"),
    "right": ("right", "of"),
    "above": ("above",),
    "below": ("below",),
}
_RELATION_VARIANTS: Dict[str, Tuple[Tuple[str, ...], ...]] = {
    "left": (("left", "of"), ("to", "the", "left", "of")),
    "right": (("right", "of"), ("to", "the", "right", "of")),
    "above": (("above",),),
    "below": (("below",),),
}
_OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}

# Caption frames: words before and after the object list ("{}" stands for the list).
_LIST_PREFIXES: Tuple[Tuple[str, ...], ...] = (
    (),
    ("a", "photo", "of"),
    ("a", "picture", "of"),
    ("an", "image", "of"),
    ("an", "image", "with"),
    ("a", "scene", "with"),
    ("there", "is"),
    ("this", "image", "shows"),
    ("a", "picture", "showing"),
    ("a", "photo", "containing"),
)
_LIST_SUFFIXES: Tuple[Tuple[str, ...], ...] = (
    (),
    (),
    (),
    ("on", "a", "textured", "background"),
    ("in", "the", "picture"),
)
_RELATION_PREFIXES: Tuple[Tuple[str, ...], ...] = ((), ("there", "is"), ("a", "photo", "of"), ("a", "picture", "of"))

_FRAME_WORDS = {w for frame in _LIST_PREFIXES + _LIST_SUFFIXES + _RELATION_PREFIXES for w in frame}
_RELATION_WORDS = {w for variants in _RELATION_VARIANTS.values() for v in variants for w in v}

#: Every word a caption can contain (the comma included), sorted.
VOCABULARY: Tuple[str, ...] = tuple(
    sorted(
        set(SHAPES) | set(COLOURS) | set(SIZES) | _FRAME_WORDS | _RELATION_WORDS | {"a", "an", "the", "and", "is", ","}
    )
)

#: Caption modes: ``"full"`` names every object with colour and shape (size where it is
#: needed to tell objects apart, else at random); ``"subset"`` names a random non-empty
#: subset, each with just enough words to identify it (sometimes more);
#: ``"mixed"`` picks one of the two per scene (full with probability 0.4).
MODES = ("full", "subset", "mixed")

_SUPERSAMPLE = 4


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene.

    Attributes:
        shape, colour, size: the object's attributes (names from :data:`SHAPES`,
            :data:`COLOURS`, :data:`SIZES`).
        box: ``(x0, y0, x1, y1)`` pixel box of the drawn object, half-open.
        span: ``(start, stop)`` token span of the object's words in the tokenized
            caption (position 0 is the start token), or ``None`` for an object the
            caption does not name.
        words: the words that name the object in the caption (e.g. ``("small", "red",
            "circle")``), empty for an unnamed object. For a hard negative these are
            the (false) words of the caption, while ``shape`` / ``colour`` / ``size``
            stay what is drawn.
        rgb: the colour actually drawn (the nominal colour with a little jitter).

    Example:
        >>> obj = generate_scene(2, mode="full").objects[0]
        >>> obj.named, obj.shape in obj.words, len(obj.box)
        (True, True, 4)
    """

    shape: str
    colour: str
    size: str
    box: Tuple[int, int, int, int]
    span: Optional[Tuple[int, int]] = None
    words: Tuple[str, ...] = ()
    rgb: Tuple[int, int, int] = (0, 0, 0)

    @property
    def named(self) -> bool:
        """Whether the caption names this object."""
        return self.span is not None

    @property
    def center(self) -> Tuple[float, float]:
        """``(x, y)`` centre of the box."""
        x0, y0, x1, y1 = self.box
        return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)


@dataclass(frozen=True)
class Scene:
    """A generated image, its caption and its objects.

    Attributes:
        image: ``(height, width, 3)`` uint8 RGB array.
        caption: the caption text.
        objects: the objects the caption names, in the order it names them; each has a
            ``box`` and a token ``span``.
        unnamed_objects: objects in the image that the caption does not name.
        words: the caption's tokens (words and commas) without start / end tokens;
            ``words[i]`` is token ``i + 1`` of the tokenized caption.
        seed: the seed the scene was generated from.
        mode: the caption mode (``"full"`` or ``"subset"``).
        relation: ``(i, relation, j)`` when the caption states that ``objects[i]`` is
            ``relation`` (``"left"``, ``"right"``, ``"above"``, ``"below"``) of ``objects[j]``.
        negative: for a hard negative, ``(object index, attribute, true word, false word)``.

    Example:
        >>> scene = generate_scene(4, mode="full")
        >>> scene.image.dtype, scene.size
        (dtype('uint8'), (64, 64))
        >>> scene.caption == words_to_caption(scene.words)
        True
        >>> o = scene.objects[0]
        >>> list(scene.words[o.span[0] - 1 : o.span[1] - 1]) == list(o.words)
        True
    """

    image: np.ndarray
    caption: str
    objects: Tuple[SceneObject, ...]
    unnamed_objects: Tuple[SceneObject, ...] = ()
    words: Tuple[str, ...] = ()
    seed: Union[int, Tuple[int, ...], None] = None
    mode: str = "full"
    relation: Optional[Tuple[int, str, int]] = None
    negative: Optional[Tuple[int, str, str, str]] = None
    _articles: Tuple[Optional[int], ...] = field(default=(), repr=False, compare=False)

    @property
    def all_objects(self) -> Tuple[SceneObject, ...]:
        """Named and unnamed objects together."""
        return tuple(self.objects) + tuple(self.unnamed_objects)

    @property
    def size(self) -> Tuple[int, int]:
        """``(width, height)`` of the image."""
        return (self.image.shape[1], self.image.shape[0])

    def pil(self) -> Image.Image:
        """The image as a PIL image."""
        return Image.fromarray(self.image)

    def hard_negative(self, attribute: Optional[str] = None, index: Optional[int] = None, seed: int = 0) -> "Scene":
        """See :func:`hard_negative`."""
        return hard_negative(self, attribute=attribute, index=index, seed=seed)


# ---------------------------------------------------------------- drawing


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> List[Tuple[float, float]]:
    if shape == "square":
        s = r * 0.86
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r * 0.85), (cx - r, cy + r * 0.85)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.8, cy), (cx, cy + r), (cx - r * 0.8, cy)]
    if shape == "cross":
        t = r * 0.36
        return [
            (cx - t, cy - r), (cx + t, cy - r), (cx + t, cy - t), (cx + r, cy - t),
            (cx + r, cy + t), (cx + t, cy + t), (cx + t, cy + r), (cx - t, cy + r),
            (cx - t, cy + t), (cx - r, cy + t), (cx - r, cy - t), (cx - t, cy - t),
        ]  # fmt: skip
    if shape == "star":
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.45
            angle = -np.pi / 2 + k * np.pi / 5
            points.append((cx + radius * np.cos(angle), cy + radius * np.sin(angle) + r * 0.1))
        return points
    raise ValueError(f"unknown shape {shape!r}")


def _object_mask(shape: str, cx: float, cy: float, r: float, image_size: int) -> Tuple[np.ndarray, int, int]:
    """Anti-aliased coverage in [0, 1] of one shape on a local window:
    ``(mask, x0, y0)`` with ``mask`` covering ``image[y0:y0+h, x0:x0+w]``."""
    x0 = max(int(np.floor(cx - r)) - 1, 0)
    y0 = max(int(np.floor(cy - r)) - 1, 0)
    x1 = min(int(np.ceil(cx + r)) + 1, image_size)
    y1 = min(int(np.ceil(cy + r)) + 1, image_size)
    s = _SUPERSAMPLE
    canvas = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    draw = ImageDraw.Draw(canvas)
    lx, ly = cx - x0, cy - y0
    if shape == "circle":
        draw.ellipse([(lx - r) * s, (ly - r) * s, (lx + r) * s, (ly + r) * s], fill=255)
    else:
        draw.polygon([(x * s, y * s) for x, y in _shape_polygon(shape, lx, ly, r)], fill=255)
    small = canvas.resize((x1 - x0, y1 - y0), Image.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0, x0, y0


def _background(rng: np.random.Generator, image_size: int) -> np.ndarray:
    """A low-saturation textured or noisy background, float32 ``(H, W, 3)`` in [0, 255]."""
    n = image_size
    level = rng.uniform(70, 170)
    tint = rng.uniform(-10, 10, size=3)
    kind = rng.integers(4)
    if kind == 0:  # plain noise
        tex = rng.normal(0, rng.uniform(4, 14), size=(n, n, 1))
    elif kind == 1:  # smooth blotches
        cells = int(rng.integers(3, 9))
        coarse = rng.normal(0, 1, size=(cells, cells)).astype(np.float32)
        up = np.asarray(Image.fromarray(coarse, mode="F").resize((n, n), Image.BICUBIC))
        tex = (up / (np.abs(up).max() + 1e-6) * rng.uniform(10, 25))[..., None]
    elif kind == 2:  # stripes
        period = rng.uniform(4, 12)
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:n, 0:n]
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period
        tex = (np.sin(phase) * rng.uniform(5, 14))[..., None]
    else:  # checkerboard
        cell = int(rng.integers(4, 11))
        yy, xx = np.mgrid[0:n, 0:n]
        tex = ((((xx // cell) + (yy // cell)) % 2) * 2.0 - 1.0)[..., None] * rng.uniform(5, 12)
    noise = rng.normal(0, 3, size=(n, n, 3))
    return np.clip(level + tint + tex + noise, 0, 255).astype(np.float32)


def _boxes_overlap(a: Sequence[int], b: Sequence[int]) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


def _place_objects(rng: np.random.Generator, count: int, image_size: int):
    """Attributes and geometry of up to ``count`` objects, mostly non-overlapping, with
    distinct (colour, shape) pairs."""
    placed: List[Tuple[Any, ...]] = []  # (shape, colour, size, (cx, cy, r), box)
    used: Set[Tuple[str, str]] = set()
    allow_overlap = rng.random() < 0.15
    for _ in range(count):
        for _attempt in range(50):
            shape = SHAPES[rng.integers(len(SHAPES))]
            colour = list(COLOURS)[rng.integers(len(COLOURS))]
            if (colour, shape) in used:
                continue
            size = list(SIZES)[rng.integers(len(SIZES))]
            lo, hi = SIZES[size]
            r = rng.uniform(lo, hi) * image_size / 2.0
            cx = rng.uniform(r + 1, image_size - r - 1)
            cy = rng.uniform(r + 1, image_size - r - 1)
            box = (int(np.floor(cx - r)), int(np.floor(cy - r)), int(np.ceil(cx + r)), int(np.ceil(cy + r)))
            ok = True
            for other in placed:
                inter = _boxes_overlap(box, other[4])
                area = min(
                    (box[2] - box[0]) * (box[3] - box[1]), (other[4][2] - other[4][0]) * (other[4][3] - other[4][1])
                )
                limit = 0.12 * area if allow_overlap else 0
                margin_box = (box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1)
                if (inter > limit) or (not allow_overlap and _boxes_overlap(margin_box, other[4]) > 0):
                    ok = False
                    break
            if ok:
                used.add((colour, shape))
                placed.append((shape, colour, size, (cx, cy, r), box))
                break
    return placed


def _render(rng: np.random.Generator, placed, image_size: int):
    image = _background(rng, image_size)
    objects = []
    for shape, colour, size, (cx, cy, r), _ in placed:
        mask, x0, y0 = _object_mask(shape, cx, cy, r, image_size)
        h, w = mask.shape
        rgb = np.clip(np.array(COLOURS[colour], dtype=np.float32) + rng.uniform(-18, 18, size=3), 0, 255)
        shade = 1.0 + rng.normal(0, 0.02, size=(h, w, 1))
        window = image[y0 : y0 + h, x0 : x0 + w]
        image[y0 : y0 + h, x0 : x0 + w] = window * (1 - mask[..., None]) + (rgb * shade) * mask[..., None]
        ys, xs = np.nonzero(mask >= 0.5)
        box = (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1)
        red, green, blue = (int(v) for v in np.round(rgb))
        objects.append(SceneObject(shape, colour, size, box, rgb=(red, green, blue)))
    return np.clip(np.round(image), 0, 255).astype(np.uint8), objects


# ---------------------------------------------------------------- captions


def _relation(a: SceneObject, b: SceneObject) -> Optional[str]:
    """The clearest spatial relation of ``a`` to ``b`` (``None`` if unclear)."""
    (ax, ay), (bx, by) = a.center, b.center
    dx, dy = ax - bx, ay - by
    if abs(dx) >= abs(dy) * 1.5 and abs(dx) >= 6:
        return "left" if dx < 0 else "right"
    if abs(dy) >= abs(dx) * 1.5 and abs(dy) >= 6:
        return "above" if dy < 0 else "below"
    return None


def _description(
    rng: np.random.Generator, obj: SceneObject, scene_objects: Sequence[SceneObject], full: bool
) -> Tuple[str, ...]:
    """The words naming ``obj``, chosen so that they identify it among ``scene_objects``."""
    others = [o for o in scene_objects if o is not obj]

    def unique(use_size: bool, use_colour: bool) -> bool:
        return not any(
            o.shape == obj.shape and (not use_colour or o.colour == obj.colour) and (not use_size or o.size == obj.size)
            for o in others
        )

    if full:
        use_colour = True
        use_size = rng.random() < 0.5 or not unique(False, True)
    else:
        options = [(s, c) for s in (False, True) for c in (False, True) if unique(s, c)]
        # prefer colour + shape, sometimes shape only or all three
        weights = np.array(
            [{(False, False): 1.0, (False, True): 3.0, (True, False): 0.7, (True, True): 1.5}[o] for o in options]
        )
        use_size, use_colour = options[rng.choice(len(options), p=weights / weights.sum())]
    words = []
    if use_size:
        words.append(obj.size)
    if use_colour:
        words.append(obj.colour)
    words.append(obj.shape)
    return tuple(words)


def _article(first_word: str) -> str:
    return "an" if first_word[0] in "aeiou" else "a"


class _CaptionBuilder:
    def __init__(self) -> None:
        self.words: List[str] = []
        self.spans: List[Tuple[int, int]] = []
        self.articles: List[Optional[int]] = []

    def add(self, *words: str) -> None:
        self.words.extend(words)

    def mention(self, description: Tuple[str, ...], article: Optional[str] = None) -> None:
        if article == "indefinite":
            self.articles.append(len(self.words))
            self.words.append(_article(description[0]))
        elif article is not None:
            self.articles.append(None)
            self.words.append(article)
        else:
            self.articles.append(None)
        start = len(self.words)
        self.words.extend(description)
        # +1: position 0 of the tokenized caption is the start token
        self.spans.append((start + 1, len(self.words) + 1))

    def listing(self, descriptions: Sequence[Tuple[str, ...]], rng: np.random.Generator) -> None:
        oxford = rng.random() < 0.3
        for k, description in enumerate(descriptions):
            if k > 0:
                if k == len(descriptions) - 1:
                    if oxford and len(descriptions) > 2:
                        self.add(",")
                    self.add("and")
                else:
                    self.add(",")
            self.mention(description, "indefinite")


def words_to_caption(words: Sequence[str]) -> str:
    """Join caption words into text (commas attach to the previous word).

    Args:
        words: the caption's words and commas, e.g. ``Scene.words``.

    Returns:
        The caption text.

    Example:
        >>> words_to_caption(["a", "red", "circle", ",", "a", "star", "and", "a", "cross"])
        'a red circle, a star and a cross'
    """
    text = ""
    for w in words:
        if w == "," or not text:
            text += w
        else:
            text += " " + w
    return text


def _caption(rng: np.random.Generator, objects: List[SceneObject], mode: str):
    """Choose the named objects, their words and a template; return the caption data."""
    n = len(objects)
    full = mode == "full"
    if full:
        named = list(rng.permutation(n))
    else:
        k = int(rng.integers(1, n + 1)) if n > 1 else 1
        if n > 1 and k == n:
            k = int(rng.integers(1, n + 1))  # lean towards proper subsets
        named = list(rng.choice(n, size=k, replace=False))
    descriptions = [_description(rng, objects[i], objects, full) for i in named]

    builder = _CaptionBuilder()
    relation = None
    pairs = []
    if len(named) >= 2:
        for a in range(len(named)):
            for b in range(len(named)):
                if a != b and _relation(objects[named[a]], objects[named[b]]) is not None:
                    pairs.append((a, b))
    if pairs and rng.random() < (0.35 if full else 0.45):
        a, b = pairs[rng.integers(len(pairs))]
        rel = _relation(objects[named[a]], objects[named[b]])
        assert rel is not None  # the pairs are those with a relation
        order = [a, b] + [c for c in range(len(named)) if c not in (a, b)]
        named = [named[c] for c in order]
        descriptions = [descriptions[c] for c in order]
        rel_words = _RELATION_VARIANTS[rel][rng.integers(len(_RELATION_VARIANTS[rel]))]
        definite = rng.random() < 0.3
        if definite:
            builder.mention(descriptions[0], "the")
            builder.add("is", *rel_words)
            builder.mention(descriptions[1], "the")
        else:
            prefix = _RELATION_PREFIXES[rng.integers(len(_RELATION_PREFIXES))]
            builder.add(*prefix)
            builder.mention(descriptions[0], "indefinite")
            if not prefix and rng.random() < 0.3:
                builder.add("is")
            builder.add(*rel_words)
            builder.mention(descriptions[1], "indefinite")
        for k, description in enumerate(descriptions[2:]):
            builder.add("," if k < len(descriptions) - 3 else "and")
            builder.mention(description, "indefinite")
        relation = (0, rel, 1)
    else:
        builder.add(*_LIST_PREFIXES[rng.integers(len(_LIST_PREFIXES))])
        builder.listing(descriptions, rng)
        builder.add(*_LIST_SUFFIXES[rng.integers(len(_LIST_SUFFIXES))])

    named_objects = tuple(
        dataclasses.replace(objects[i], span=span, words=description)
        for i, span, description in zip(named, builder.spans, descriptions)
    )
    unnamed = tuple(objects[i] for i in range(n) if i not in set(named))
    return builder.words, named_objects, unnamed, relation, tuple(builder.articles)


# ---------------------------------------------------------------- public API


def generate_scene(
    seed: Union[int, Sequence[int]],
    mode: str = "mixed",
    image_size: int = 64,
    max_objects: int = 4,
    min_objects: int = 1,
) -> Scene:
    """Generate one scene, deterministically from ``seed``.

    Args:
        seed: an int or a sequence of ints (as accepted by ``numpy.random.default_rng``).
        mode: ``"full"`` (the caption names every object), ``"subset"`` (a random
            non-empty subset) or ``"mixed"`` (one of the two at random, full with
            probability 0.4).
        image_size: side of the square image in pixels (object sizes scale with it).
        max_objects, min_objects: range of the number of objects (1 to 4 by default;
            fewer are placed when the image is too crowded).

    Returns:
        A :class:`Scene`.

    Example:
        >>> scene = generate_scene(7, mode="full")
        >>> scene.image.shape
        (64, 64, 3)
        >>> all(o.span is not None for o in scene.objects)
        True
        >>> generate_scene(7, mode="full").caption == scene.caption
        True
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"expected 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    rng = np.random.default_rng(seed)
    count = int(rng.integers(min_objects, max_objects + 1))
    placed = _place_objects(rng, count, image_size)
    image, objects = _render(rng, placed, image_size)
    if mode == "mixed":
        mode = "full" if rng.random() < 0.4 else "subset"
    words, named, unnamed, relation, articles = _caption(rng, objects, mode)
    return Scene(
        image=image,
        caption=words_to_caption(words),
        objects=named,
        unnamed_objects=unnamed,
        words=tuple(words),
        seed=seed if isinstance(seed, int) else tuple(seed),
        mode=mode,
        relation=relation,
        _articles=articles,
    )


class SceneGenerator:
    """A reproducible stream of scenes: scene ``i`` of ``SceneGenerator(seed)`` is
    ``generate_scene((seed, i), ...)``.

    Args:
        seed: the stream's seed. The demo model was trained on ``seed=0``; use
            another seed (e.g. the default 12345 of the evaluation helpers) for held-out scenes.
        mode, image_size, max_objects, min_objects: as in :func:`generate_scene`.

    Example:
        >>> gen = SceneGenerator(3, mode="subset")
        >>> [s.caption for s in gen.scenes(2)] == [s.caption for s in SceneGenerator(3, mode="subset").scenes(2)]
        True
    """

    def __init__(
        self, seed: int = 0, mode: str = "mixed", image_size: int = 64, max_objects: int = 4, min_objects: int = 1
    ):
        self.seed = int(seed)
        self.options: Dict[str, Any] = dict(mode=mode, image_size=image_size, max_objects=max_objects, min_objects=min_objects)
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")

    def scene(self, index: int) -> Scene:
        """Scene number ``index`` of the stream."""
        return generate_scene((self.seed, int(index)), **self.options)

    def scenes(self, n: int, start: int = 0) -> List[Scene]:
        """Scenes ``start, ..., start + n - 1`` of the stream."""
        return [self.scene(i) for i in range(start, start + n)]

    def __iter__(self):
        i = 0
        while True:
            yield self.scene(i)
            i += 1


def hard_negative(scene: Scene, attribute: Optional[str] = None, index: Optional[int] = None, seed: int = 0) -> Scene:
    """A caption that is false for the scene's image: one named object's colour or shape
    word is swapped for another (one that no object in the image has in that
    combination). The image, the boxes and the token spans stay the same.

    Args:
        scene: the scene.
        attribute: ``"colour"`` or ``"shape"`` (``None``: chosen at random).
        index: which of ``scene.objects`` to change (``None``: at random; an object
            named without a colour word only gets its shape swapped).
        seed: seed of the random choices.

    Returns:
        A :class:`Scene` with the new caption and ``words``; ``negative`` records
        ``(object index, attribute, true word, false word)``; the changed object's
        ``words`` hold the false words, its ``colour`` / ``shape`` stay the drawn ones.

    Example:
        >>> scene = generate_scene(1, mode="full")
        >>> negative = hard_negative(scene, attribute="colour", index=0)
        >>> negative.caption != scene.caption and negative.image is scene.image
        True
        >>> i, attr, true_word, false_word = negative.negative
        >>> (i, attr, true_word == scene.objects[0].colour, false_word in negative.objects[0].words)
        (0, 'colour', True, True)
    """
    if not scene.objects:
        raise ValueError("scene: the caption names no object")
    rng = np.random.default_rng([int(seed), 0x6E6567])
    if index is None:
        index = int(rng.integers(len(scene.objects)))
    obj = scene.objects[index]
    if attribute is None:
        attribute = "colour" if (obj.colour in obj.words and rng.random() < 0.5) else "shape"
    if attribute == "colour" and obj.colour not in obj.words:
        raise ValueError(f"scene.objects[{index}] is named without a colour word: {obj.words}")
    if attribute not in ("colour", "shape"):
        raise ValueError(f"attribute: expected 'colour' or 'shape', got {attribute!r}")
    present = {(o.colour, o.shape) for o in scene.all_objects}
    if attribute == "colour":
        true_word = obj.colour
        candidates = [c for c in COLOURS if c != obj.colour and (c, obj.shape) not in present]
    else:
        true_word = obj.shape
        if obj.colour in obj.words:
            candidates = [s for s in SHAPES if s != obj.shape and (obj.colour, s) not in present]
        else:  # shape-only mention: the new shape must be absent from the image
            candidates = [s for s in SHAPES if s not in {o.shape for o in scene.all_objects}]
    false_word = candidates[rng.integers(len(candidates))]
    words = list(scene.words)
    assert obj.span is not None  # scene.objects are the ones the caption names
    start, stop = obj.span
    position = start - 1 + list(obj.words).index(true_word)
    words[position] = false_word
    article = scene._articles[index] if index < len(scene._articles) else None
    if article is not None:
        words[article] = _article(words[start - 1])
    new_words = tuple(false_word if w == true_word else w for w in obj.words)
    objects = list(scene.objects)
    objects[index] = dataclasses.replace(obj, words=new_words)
    return dataclasses.replace(
        scene,
        caption=words_to_caption(words),
        objects=tuple(objects),
        words=tuple(words),
        negative=(index, attribute, true_word, false_word),
    )


def _matches(words: Sequence[str], obj: SceneObject) -> bool:
    return all(w in (obj.shape, obj.colour, obj.size) for w in words)


def caption_fits(caption_scene: Scene, image_scene: Scene, exhaustive: Optional[bool] = None) -> bool:
    """Whether ``caption_scene``'s caption could be a true caption of ``image_scene``'s
    image: every named object's words match some object in the image, and a stated
    relation is not contradicted (conservative: an unclear relation counts as a fit).
    An *exhaustive* caption (by default: one of mode ``"full"``) must moreover account for
    every object of the image.

    Used to keep captions that also fit another image of a batch out of the
    contrastive negatives, and to spot ties in retrieval.

    Args:
        caption_scene: the scene whose caption is checked.
        image_scene: the scene whose image (objects) it is checked against.
        exhaustive: whether the caption claims to name every object (default:
            ``caption_scene.mode == "full"``).

    Returns:
        ``True`` if the caption fits the image.

    Example:
        >>> scene = generate_scene(5, mode="full")
        >>> caption_fits(scene, scene)
        True
        >>> caption_fits(hard_negative(scene, seed=1), scene)
        False
    """
    if exhaustive is None:
        exhaustive = caption_scene.mode == "full"
    objects = image_scene.all_objects
    if exhaustive and len(objects) != len(caption_scene.objects):
        return False
    candidates = []
    for named in caption_scene.objects:
        found = [o for o in objects if _matches(named.words, o)]
        if not found:
            return False
        candidates.append(found)
    if exhaustive and any(all(o is not c for found in candidates for c in found) for o in objects):
        return False
    if caption_scene.relation is not None:
        i, rel, j = caption_scene.relation
        return any(a is not b and _relation(a, b) in (rel, None) for a in candidates[i] for b in candidates[j])
    return True
