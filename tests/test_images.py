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
