"""Images of any size as a model sees them, and pixel boxes mapped into the model's image.

A model's image processor fits an image to its input size: HF CLIP resizes the shortest
side and centre-crops (what lies outside the centre square is lost), SigLIP squashes to
a fixed size, SigLIP-2's NaFlex processor resizes each image to its own grid of at most
``max_num_patches`` patches (about keeping its aspect ratio) and gives the patches
flattened. :func:`fit_image` does what the processor does (``fit="crop"``) or first
pads the image to a square with the processor's mean colour (``fit="pad"``: nothing is
lost; the padding is 0 in the normalized pixel space), and keeps the geometry, so boxes
given in the original image's pixels are mapped to the model's pixels either way.
Its ``pixel_values`` are always an image ``(1, 3, H, W)``; a NaFlex model's patches are
:func:`image_to_patches` of it (and :func:`patches_to_image` goes back).
"""

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from captum_bilinear._utils.checks import check_box

FITS = ("crop", "pad")

Box = Tuple[float, float, float, float]


@dataclass
class FittedImage:
    """An image as the model sees it, and how original pixels map onto it.

    A point ``(x, y)`` of the original image lands at ``(x * scale[0] - offset[0],
    y * scale[1] - offset[1])`` in the model's image.
    """

    pixel_values: Tensor  #: ``(1, 3, H, W)`` from the model's image processor (NaFlex: its patches as an image)
    display: np.ndarray  #: ``(H, W, 3)`` uint8: the same geometry, for plots
    scale: Tuple[float, float]  #: ``(x, y)`` factors from original to model pixels
    offset: Tuple[float, float]  #: ``(x, y)`` subtracted after scaling (negative: padding)
    original_size: Tuple[int, int]  #: ``(width, height)`` of the original image
    fit: str  #: ``"crop"`` or ``"pad"``
    description: str  #: one line saying how the image was fitted

    @property
    def size(self) -> Tuple[int, int]:
        """``(width, height)`` of the model's image."""
        return self.display.shape[1], self.display.shape[0]

    def map_box(self, box: Sequence[float], name: str = "box") -> Box:
        """A box ``(x0, y0, x1, y1)`` in original pixels -> the box in the model's image,
        clipped to it; ``ValueError`` (naming ``name``) if it is not inside the original
        image or lies entirely outside what the model sees."""
        width, height = self.original_size
        x0, y0, x1, y1 = check_box(box, (height, width), name)
        (scale_x, scale_y), (offset_x, offset_y) = self.scale, self.offset
        width, height = self.size
        mapped = (x0 * scale_x - offset_x, y0 * scale_y - offset_y, x1 * scale_x - offset_x, y1 * scale_y - offset_y)
        clipped = (max(0.0, mapped[0]), max(0.0, mapped[1]), min(float(width), mapped[2]), min(float(height), mapped[3]))
        if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
            raise ValueError(f"{name}: {tuple(box)} lies outside the part of the image the model sees "
                             f"({self.description}); fit='pad' keeps the whole image")
        return clipped

    @property
    def kept_region(self) -> Box:
        """The part of the original image the model sees, ``(x0, y0, x1, y1)`` in original
        pixels (beyond the image where it was padded)."""
        (scale_x, scale_y), (offset_x, offset_y) = self.scale, self.offset
        width, height = self.size
        return (offset_x / scale_x, offset_y / scale_y, (width + offset_x) / scale_x, (height + offset_y) / scale_y)

    @property
    def cuts_off(self) -> bool:
        """Whether part of the original image (more than half a pixel) is not seen by the model."""
        x0, y0, x1, y1 = self.kept_region
        width, height = self.original_size
        return x0 > 0.5 or y0 > 0.5 or x1 < width - 0.5 or y1 < height - 0.5

    def box_kept_share(self, box: Sequence[float]) -> float:
        """The share of a box's area (original pixels) that the model's image keeps."""
        x0, y0, x1, y1 = (float(v) for v in box)
        kept_x0, kept_y0, kept_x1, kept_y1 = self.kept_region
        kept_x = max(0.0, min(x1, kept_x1) - max(x0, kept_x0))
        kept_y = max(0.0, min(y1, kept_y1) - max(y0, kept_y0))
        area = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
        return kept_x * kept_y / area if area > 0 else 0.0


def is_naflex_processor(image_processor: Any) -> bool:
    """Whether ``image_processor`` gives NaFlex patches (SigLIP-2's: ``patch_size`` and
    ``max_num_patches``) rather than images.

    Example:
        >>> from captum_bilinear.zoo import make_image_processor
        >>> is_naflex_processor(make_image_processor(64))
        False
    """
    return getattr(image_processor, "max_num_patches", None) is not None and bool(
        getattr(image_processor, "patch_size", None))


def image_to_patches(pixel_values: Tensor, patch_size: int) -> Tuple[Tensor, Tensor, Tensor]:
    """A batch of images ``(batch, C, H, W)`` as a NaFlex model takes them:
    ``(pixel_values, pixel_attention_mask, spatial_shapes)`` with ``pixel_values`` of
    shape ``(batch, rows * cols, patch_size * patch_size * C)`` (patches row-major, each
    patch's pixels row-major with the channel last, as ``Siglip2ImageProcessor``), no
    padding slots, the mask all ones and ``spatial_shapes`` ``(rows, cols)`` per image.
    Differentiable (a reshape); :func:`patches_to_image` inverts it.

    Example:
        >>> values, mask, shapes = image_to_patches(torch.arange(2 * 4 * 6.).reshape(1, 2, 4, 6), patch_size=2)
        >>> tuple(values.shape), shapes.tolist(), values[0, 1].tolist()
        ((1, 6, 8), [[2, 3]], [2.0, 26.0, 3.0, 27.0, 8.0, 32.0, 9.0, 33.0])
    """
    batch, channels, height, width = pixel_values.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"pixel_values: {height}x{width} images are not a whole number of {patch_size}-pixel patches")
    rows, cols = height // patch_size, width // patch_size
    patches = pixel_values.reshape(batch, channels, rows, patch_size, cols, patch_size).permute(0, 2, 4, 3, 5, 1)
    values = patches.reshape(batch, rows * cols, patch_size * patch_size * channels)
    mask = torch.ones(batch, rows * cols, dtype=torch.int32, device=pixel_values.device)
    shapes = torch.tensor([[rows, cols]] * batch, dtype=torch.long, device=pixel_values.device)
    return values, mask, shapes


def patches_to_image(pixel_values: Tensor, spatial_shapes: Tensor, patch_size: int) -> Tensor:
    """NaFlex patches ``(batch, slots, patch_size * patch_size * C)`` back to images
    ``(batch, C, rows * patch_size, cols * patch_size)`` (padding slots dropped); every
    image of the batch must have the same ``spatial_shapes``.

    Example:
        >>> image = torch.randn(1, 3, 16, 8)
        >>> values, _, shapes = image_to_patches(image, patch_size=4)
        >>> torch.equal(patches_to_image(values, shapes, patch_size=4), image)
        True
    """
    shapes = spatial_shapes.reshape(-1, 2)
    if not bool((shapes == shapes[:1]).all()):
        raise ValueError(f"spatial_shapes: the images of one batch must share their grid, got {shapes.tolist()}")
    rows, cols = (int(v) for v in shapes[0])
    batch = pixel_values.shape[0]
    channels = pixel_values.shape[-1] // (patch_size * patch_size)
    patches = pixel_values[:, : rows * cols].reshape(batch, rows, cols, patch_size, patch_size, channels)
    return patches.permute(0, 5, 1, 3, 2, 4).reshape(batch, channels, rows * patch_size, cols * patch_size)


def _naflex_size_function(image_processor: Any) -> Any:
    """The processor's own ``get_image_size_for_max_num_patches`` (its module's; the PIL
    and the torchvision variants each have one)."""
    import importlib

    for name in (type(image_processor).__module__, "transformers.models.siglip2.image_processing_pil_siglip2",
                 "transformers.models.siglip2.image_processing_siglip2"):
        try:
            function = getattr(importlib.import_module(name), "get_image_size_for_max_num_patches", None)
        except ImportError:
            continue
        if function is not None:
            return function
    raise ValueError(f"image_processor: cannot find how {type(image_processor).__name__} sizes its images "
                     "(get_image_size_for_max_num_patches)")


def _target_geometry(image_processor: Any, width: int, height: int) -> Tuple[Tuple[int, int], Tuple[int, int], str]:
    """``(resized (w, h), crop (w, h) or (0, 0), kind)`` as the processor computes them."""
    if is_naflex_processor(image_processor):  # SigLIP-2: its own grid of at most max_num_patches patches
        target_height, target_width = _naflex_size_function(image_processor)(
            height, width, int(image_processor.patch_size), int(image_processor.max_num_patches))
        return (int(target_width), int(target_height)), (0, 0), "naflex"
    size = dict(getattr(image_processor, "size", {}) or {})
    if "shortest_edge" in size:  # CLIP: keep the aspect ratio (the long side rounded down, as HF does)
        short = int(size["shortest_edge"])
        resized = (short, int(short * height / width)) if width <= height else (int(short * width / height), short)
        kind = "resize"
    elif "height" in size and "width" in size:  # SigLIP: squash to a fixed size
        resized = (int(size["width"]), int(size["height"]))
        kind = "squash"
    else:
        raise ValueError(f"image_processor: unsupported size {size} (expected shortest_edge or height/width)")
    crop = dict(getattr(image_processor, "crop_size", {}) or {})
    if getattr(image_processor, "do_center_crop", False) and crop:
        return resized, (int(crop["width"]), int(crop["height"])), kind
    return resized, (0, 0), kind


def fit_image(image: Any, image_processor: Any, fit: str = "crop") -> FittedImage:
    """Prepares a PIL image as ``image_processor`` does, keeping the geometry for plots
    and boxes.

    Args:
        image: a PIL image (any size, any mode; converted to RGB).
        image_processor: the model's image processor (HF CLIP / SigLIP style).
        fit: ``"crop"``: what the processor does (CLIP: resize the shortest side, crop
            the centre; SigLIP: squash; SigLIP-2: resize to its own patch grid);
            ``"pad"``: pad to a square with the processor's
            mean colour first, so nothing is cut off.

    Returns:
        A :class:`FittedImage`.

    Example:
        >>> from PIL import Image
        >>> from captum_bilinear.zoo import make_image_processor
        >>> fitted = fit_image(Image.new("RGB", (128, 96)), make_image_processor(64))
        >>> fitted.display.shape, fitted.map_box((32, 0, 96, 48))  # 96 -> 64 px, centre crop
        ((64, 64, 3), (11.25, 0.0, 53.75, 32.0))
        >>> fit_image(Image.new("RGB", (128, 96)), make_image_processor(64), fit="pad").map_box((32, 0, 96, 48))
        (16.0, 8.0, 48.0, 32.0)
    """
    from PIL import Image

    if fit not in FITS:
        raise ValueError(f"fit: expected one of {FITS}, got {fit!r}")
    image = image.convert("RGB")
    original = image.size
    pad_offset = (0.0, 0.0)
    if fit == "pad" and original[0] != original[1]:
        side = max(original)
        mean = getattr(image_processor, "image_mean", None) or (0.5, 0.5, 0.5)
        red, green, blue = (int(round(255 * float(m))) for m in mean)
        padded = Image.new("RGB", (side, side), (red, green, blue))
        left, top = (side - original[0]) // 2, (side - original[1]) // 2
        padded.paste(image, (left, top))
        image, pad_offset = padded, (float(left), float(top))
    width, height = image.size
    resized, crop, kind = _target_geometry(image_processor, width, height)
    scale = (resized[0] / width, resized[1] / height)
    resample = getattr(image_processor, "resample", Image.BICUBIC)
    picture = image.resize(resized, resample=resample)
    offset = (0.0, 0.0)
    if crop != (0, 0):
        left, top = (picture.size[0] - crop[0]) // 2, (picture.size[1] - crop[1]) // 2
        picture = picture.crop((left, top, left + crop[0], top + crop[1]))
        offset = (float(left), float(top))
    processed = image_processor(images=image, return_tensors="pt")
    pixel_values = processed["pixel_values"]
    if kind == "naflex":
        pixel_values = patches_to_image(pixel_values, processed["spatial_shapes"], int(image_processor.patch_size))
    display = np.asarray(picture)
    if tuple(pixel_values.shape[-2:]) != display.shape[:2]:
        raise ValueError(f"image_processor: makes {tuple(pixel_values.shape[-2:])} images, expected {display.shape[:2]}")
    # original -> padded (+pad_offset) -> resized (*scale) -> cropped (-offset)
    total_offset = (offset[0] - pad_offset[0] * scale[0], offset[1] - pad_offset[1] * scale[1])
    final = (display.shape[1], display.shape[0])
    if fit == "pad" and original[0] != original[1]:
        description = (f"padded {original[0]}x{original[1]} to {width}x{height} with the mean colour, "
                       f"resized to {final[0]}x{final[1]}")
    elif kind == "squash" and original[0] != original[1]:
        description = f"squashed {original[0]}x{original[1]} to {final[0]}x{final[1]} (aspect ratio not kept)"
    elif crop != (0, 0) and resized != crop:
        lost = ("left and right", resized[0] - crop[0]) if resized[0] > crop[0] else ("top and bottom", resized[1] - crop[1])
        description = (f"resized {original[0]}x{original[1]} to {resized[0]}x{resized[1]} and centre-cropped to "
                       f"{final[0]}x{final[1]} (about {lost[1] // 2} model pixels cut off on each of {lost[0]}; "
                       "fit='pad' keeps them)")
    elif original == final:
        description = f"used as it is ({final[0]}x{final[1]})"
    else:
        description = f"resized {original[0]}x{original[1]} to {final[0]}x{final[1]}"
    return FittedImage(pixel_values, display, scale, total_offset, original, fit, description)


#: The EXIF tag that says how a photo is turned (1: as stored; 2-8: mirrored and / or turned).
EXIF_ORIENTATION = 0x0112
_INTEGER_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _upright(image: Any, size: Optional[Tuple[int, int]]) -> Any:
    """The image turned as its EXIF orientation says (as every viewer shows it), unless
    ``size`` (the ``(width, height)`` a dataset's annotations were made on) is the stored
    image's and not the turned one's: then the annotations are in the stored frame."""
    from PIL import ImageOps

    try:
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a damaged EXIF block: PIL's errors vary; the pixels are still fine
        return image
    if orientation not in range(2, 9):
        return image
    upright = ImageOps.exif_transpose(image)
    if size is not None and tuple(size) == image.size and tuple(size) != upright.size:
        return image
    return upright


def _as_rgb(image: Any, where: str) -> Any:
    """8-bit RGB with each mode's full range kept: 16-bit grey scaled by 255 / 65535 (PIL's
    own conversion clips it, so most of it turns white), floating-point grey read as
    values in [0, 1] (or [0, 255]), transparency composited on white (as HF image
    processors do)."""
    from PIL import Image

    mode = image.mode
    if mode in _INTEGER_MODES or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if not np.isfinite(values).all():
            raise ValueError(f"{where}: has NaN or infinite pixel values")
        if mode == "F" and low >= 0 and high <= 1:
            values = values * 255
        elif mode == "F" and not (low >= 0 and high <= 255):
            raise ValueError(f"{where}: floating-point pixels from {low:g} to {high:g}; expected values in [0, 1] "
                             "(or [0, 255]); convert the image to 8 bits first")
        elif mode in _INTEGER_MODES:
            if low < 0 or high > 65535:
                raise ValueError(f"{where}: 32-bit integer pixels from {low:g} to {high:g}; only 8- and 16-bit "
                                 "images are read; convert the image to 8 bits first")
            values = values / 257  # 65535 -> 255
        return Image.fromarray(np.round(values).astype(np.uint8), "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def open_image(path: Any, name: str = "image_path", size: Optional[Tuple[int, int]] = None) -> Any:
    """The RGB PIL image at ``path``, upright, with its full range of values.

    A photo turned by its EXIF orientation (a phone's portrait photo) is turned as every
    viewer shows it, so boxes are read in that frame; 16-bit and floating-point grey
    images keep their range; transparent parts are white. Errors are ``ValueError``
    naming ``name`` and the file: missing, not an image, damaged or truncated, larger
    than PIL's decompression-bomb limit.

    Args:
        path: the image file.
        name: the argument named in errors.
        size: ``(width, height)`` a dataset recorded for the image: when it is the stored
            image's size and not the turned one's, the annotations were made on the
            stored pixels and the image is not turned.

    Returns:
        A PIL image of mode RGB.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from PIL import Image
        >>> path = os.path.join(tempfile.mkdtemp(), "grey16.png")
        >>> Image.fromarray(np.full((4, 6), 32896, dtype=np.uint16)).save(path)  # 16-bit mid-grey
        >>> image = open_image(path)
        >>> image.mode, image.size, image.getpixel((0, 0))
        ('RGB', (6, 4), (128, 128, 128))
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a file path, got {type(path).__name__}")
    if os.path.isdir(path):
        raise ValueError(f"{name}: {path} is a directory; expected an image file")
    if not os.path.isfile(path):
        raise ValueError(f"{name}: no such file: {path}")
    where = f"{name}: {os.fspath(path)}"
    try:
        with Image.open(os.fspath(path)) as opened:
            opened.load()  # decode now: a truncated or damaged file fails here, not later
            image = _upright(opened, size)
            if image is opened:
                image = opened.copy()
    except Image.DecompressionBombError as error:
        raise ValueError(f"{where}: too large for PIL ({str(error).split(', could be')[0]}: twice "
                         "PIL.Image.MAX_IMAGE_PIXELS, a guard against decompression bombs); downscale the image, "
                         "or raise that limit if you trust the file") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        raise ValueError(f"{where}: cannot be read as an image ({type(error).__name__}: {error})") from error
    return _as_rgb(image, where)


def read_image(path: str) -> Any:
    """The RGB PIL image at ``path``, upright (its EXIF orientation applied, so a ``box``
    is read in the frame every viewer shows) and with its full range of values (16-bit and
    floating-point images); clear errors for a missing, unreadable or oversized file
    (:func:`open_image`).

    Example:
        >>> import os, tempfile
        >>> from captum_bilinear.zoo import generate_scene
        >>> path = os.path.join(tempfile.mkdtemp(), "scene.png"); generate_scene(0).pil().save(path)
        >>> read_image(path).size
        (64, 64)
        >>> read_image("no/such/file.png")
        Traceback (most recent call last):
        ...
        ValueError: image_path: no such file: no/such/file.png
    """
    return open_image(path, "image_path")
