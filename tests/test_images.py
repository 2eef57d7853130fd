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
