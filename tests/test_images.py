"""Fitting an image to the model: the processor's own pixels, and the geometry computed by
hand for a crop and a pad."""

import pytest
import torch
from PIL import Image, ImageDraw

from captum_bilinear.images import fit_image
from captum_bilinear.zoo import make_image_processor


@pytest.fixture
def wide():
    """128 x 96 with a red square at the left border."""
    image = Image.new("RGB", (128, 96), (128, 128, 128))
    ImageDraw.Draw(image).rectangle((0, 40, 15, 55), fill=(255, 0, 0))
    return image


def test_crop_is_what_the_processor_does(wide):
    processor = make_image_processor(64)
    fitted = fit_image(wide, processor, fit="crop")
    torch.testing.assert_close(fitted.pixel_values, processor(images=wide, return_tensors="pt")["pixel_values"])
    # 96 -> 64 rows (scale 2/3): 85 columns, of which the centre 64 are kept (10 cut on the left)
    assert fitted.scale == pytest.approx((85 / 128, 64 / 96))
    assert fitted.kept_region == pytest.approx((10 * 128 / 85, 0.0, 74 * 128 / 85, 96.0))
    assert fitted.cuts_off
    assert "centre-cropped" in fitted.description
    with pytest.raises(ValueError, match="box: .* lies outside the part of the image the model sees"):
        fitted.map_box((0, 40, 14, 56))  # the red square is lost
    assert fitted.box_kept_share((0, 40, 14, 56)) == 0.0
    assert fitted.box_kept_share((0, 40, 16, 56)) == pytest.approx((16 - 10 * 128 / 85) / 16)


def test_pad_keeps_everything_and_maps_boxes(wide):
    processor = make_image_processor(64)
    fitted = fit_image(wide, processor, fit="pad")
    mean = tuple(int(round(255 * m)) for m in processor.image_mean)
    padded = Image.new("RGB", (128, 128), mean)
    padded.paste(wide, (0, 16))
    torch.testing.assert_close(fitted.pixel_values, processor(images=padded, return_tensors="pt")["pixel_values"])
    assert not fitted.cuts_off
    assert fitted.kept_region == pytest.approx((0.0, -16.0, 128.0, 112.0))
    # (x, y) -> (x / 2, (y + 16) / 2)
    assert fitted.map_box((0, 40, 16, 56)) == pytest.approx((0.0, 28.0, 8.0, 36.0))
    assert fitted.box_kept_share((0, 40, 16, 56)) == pytest.approx(1.0)
    red, green, blue = (int(v) for v in fitted.display[32, 4])
    assert red > 200 and green < 50 and blue < 50


def test_a_square_image_of_the_models_size_is_used_as_it_is():
    image = Image.new("RGB", (64, 64), (10, 200, 30))
    fitted = fit_image(image, make_image_processor(64))
    assert fitted.description == "used as it is (64x64)" and not fitted.cuts_off
    assert fitted.map_box((8, 8, 16, 24)) == (8.0, 8.0, 16.0, 24.0)
    with pytest.raises(ValueError, match="fit: expected one of"):
        fit_image(image, make_image_processor(64), fit="stretch")


# --- reading: the full range of 16-bit and float images, EXIF orientation, clear errors ---

def _saved(image, name, tmp_path, **options):
    path = str(tmp_path / name)
    image.save(path, **options)
    return path


def test_a_16_bit_grey_png_keeps_its_range(tmp_path):
    """PIL's own conversion clips 16-bit values to 255: the image came out nearly white."""
    import numpy as np

    from captum_bilinear.images import read_image

    values = np.array([[0, 257, 32896, 65535], [1000, 20000, 40000, 60000]], dtype=np.uint16)
    path = _saved(Image.fromarray(values), "grey16.png", tmp_path)
    assert Image.open(path).mode == "I;16"
    grey = np.asarray(read_image(path))
    assert grey.shape == (2, 4, 3) and (grey == grey[..., :1]).all()
    expected = np.round(values / 65535 * 255).astype(np.uint8)  # the same share of the full range
    assert np.array_equal(grey[..., 0], expected)


def test_a_float_tiff_in_the_unit_range_is_read_as_its_shares(tmp_path):
    import numpy as np

    from captum_bilinear.images import read_image

    values = np.array([[0.0, 0.25, 0.5, 1.0]], dtype=np.float32)
    path = _saved(Image.fromarray(values), "grey.tif", tmp_path)
    assert Image.open(path).mode == "F"
    assert np.asarray(read_image(path))[0, :, 1].tolist() == [0, 64, 128, 255]


@pytest.mark.parametrize("values, words", [
    ([[-1.0, 3.5]], "floating-point pixels from -1 to 3.5"),
    ([[0.0, float("nan")]], "NaN or infinite"),
])
def test_float_images_outside_any_convention_are_refused_with_the_file(tmp_path, values, words):
    import numpy as np

    from captum_bilinear.images import read_image

    path = _saved(Image.fromarray(np.array(values, dtype=np.float32)), "odd.tif", tmp_path)
    with pytest.raises(ValueError, match=f"image_path: {path}: .*{words}"):
        read_image(path)


def _portrait():
    """A 40 x 100 upright picture: red at the top, blue at the bottom."""
    upright = Image.new("RGB", (40, 100), (128, 128, 128))
    ImageDraw.Draw(upright).rectangle((0, 0, 39, 19), fill=(255, 0, 0))
    ImageDraw.Draw(upright).rectangle((0, 80, 39, 99), fill=(0, 0, 255))
    return upright


def _stored_as_a_phone_does(upright, tmp_path):
    """Stored turned to landscape with the EXIF orientation 6 ("turn 90 degrees clockwise
    to show"), as phones save portrait photos."""
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what orientation 6 turns back
    return _saved(stored, "phone.png", tmp_path, exif=exif.tobytes()), stored


def test_a_phone_photo_is_read_upright_and_a_box_is_in_that_frame(tmp_path):
    import numpy as np

    from captum_bilinear.images import read_image

    upright = _portrait()
    path, stored = _stored_as_a_phone_does(upright, tmp_path)
    assert stored.size == (100, 40)
    image = read_image(path)
    assert image.size == (40, 100) and np.array_equal(np.asarray(image), np.asarray(upright))
    fitted = fit_image(image, make_image_processor(64), fit="pad")
    x0, y0, x1, y1 = (int(v) for v in fitted.map_box((0, 0, 40, 20)))  # the red band, in the upright frame
    patch = fitted.display[y0:y1, x0:x1].reshape(-1, 3).mean(0)
    assert patch[0] > 200 and patch[2] < 60


def test_a_datasets_image_is_turned_only_when_its_recorded_size_is_the_upright_one(tmp_path):
    import numpy as np

    from captum_bilinear.datasets import image_loader

    upright = _portrait()
    path, stored = _stored_as_a_phone_does(upright, tmp_path)
    assert np.array_equal(np.asarray(image_loader(path, size=(40, 100))()), np.asarray(upright))
    assert np.array_equal(np.asarray(image_loader(path, size=(100, 40))()), np.asarray(stored))
    assert image_loader(path)().size == (40, 100)  # nothing recorded: as every viewer shows it


def test_transparent_parts_are_white_as_hf_processors_make_them(tmp_path):
    from captum_bilinear.images import read_image

    image = Image.new("RGBA", (4, 4), (0, 255, 0, 0))  # fully transparent green
    image.putpixel((0, 0), (255, 0, 0, 255))
    read = read_image(_saved(image, "logo.png", tmp_path))
    assert read.getpixel((1, 1)) == (255, 255, 255) and read.getpixel((0, 0)) == (255, 0, 0)


def test_oversized_truncated_and_32_bit_images_are_one_clear_error(tmp_path, monkeypatch):
    import numpy as np

    from captum_bilinear.images import read_image

    big = _saved(Image.new("RGB", (64, 64)), "big.png", tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels: above twice the limit
    with pytest.raises(ValueError, match=f"image_path: {big}: too large for PIL \\(Image size \\(4096 pixels\\) "
                                         "exceeds limit of 2000 pixels: twice PIL.Image.MAX_IMAGE_PIXELS"):
        read_image(big)
    monkeypatch.undo()
    whole = open(_saved(Image.effect_noise((64, 64), 50).convert("RGB"), "noise.png", tmp_path), "rb").read()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=f"image_path: {truncated}: cannot be read as an image"):
        read_image(str(truncated))
    deep = _saved(Image.fromarray(np.array([[0, 100000]], dtype=np.int32)), "deep.tif", tmp_path)
    with pytest.raises(ValueError, match="32-bit integer pixels from 0 to 100000"):
        read_image(deep)


# ---------------------------------------------------------------- NaFlex (SigLIP-2) processors

def _naflex_processor():
    from captum_bilinear.zoo.siglip2 import make_siglip2_image_processor, siglip2_available

    if not siglip2_available():
        pytest.skip("transformers < 4.49 has no Siglip2ImageProcessor (SigLIP-2)")
    return make_siglip2_image_processor(64, 8)


def test_naflex_image_is_the_processors_patches(wide):
    """A 4:3 image gets its own grid (7 x 9 patches, of at most 64); the fitted image's
    patches are exactly the processor's (its padding slots aside), and boxes scale."""
    from captum_bilinear.images import image_to_patches

    processor = _naflex_processor()
    fitted = fit_image(wide, processor)
    expected = processor(images=wide, return_tensors="pt")
    rows, cols = expected["spatial_shapes"][0].tolist()
    assert tuple(fitted.pixel_values.shape) == (1, 3, 8 * rows, 8 * cols) and fitted.display.shape[:2] == (8 * rows, 8 * cols)
    values, mask, shapes = image_to_patches(fitted.pixel_values, 8)
    assert torch.equal(shapes, expected["spatial_shapes"].long())
    assert torch.equal(values[0], expected["pixel_values"][0, : rows * cols])
    assert int(expected["pixel_attention_mask"].sum()) == rows * cols == int(mask.sum())
    width, height = wide.size
    assert fitted.map_box((0, 0, width / 2, height / 2)) == pytest.approx((0, 0, 4 * cols, 4 * rows))


def test_patches_round_trip_and_layout():
    from captum_bilinear.images import image_to_patches, patches_to_image

    image = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    values, mask, shapes = image_to_patches(image, 2)
    assert values.shape == (2, 6, 12) and shapes.tolist() == [[2, 3], [2, 3]] and bool(mask.all())
    # slot 4 is grid cell (1, 1): pixels rows 2-3, columns 2-3, channel last within a pixel
    assert values[1, 4].tolist() == image[1, :, 2:4, 2:4].permute(1, 2, 0).flatten().tolist()
    assert torch.equal(patches_to_image(values, shapes, 2), image)
    with pytest.raises(ValueError, match="pixel_values: 4x6 images are not a whole number of 4-pixel patches"):
        image_to_patches(image, 4)
