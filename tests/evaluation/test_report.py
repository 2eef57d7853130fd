"""The failure gallery draws each object's box on the pixels it covers, on the image and
on the span's map alike."""

import numpy as np
import pytest

from captum_bilinear.evaluation import report


def test_gallery_boxes_sit_on_the_pixel_edges(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(report.plt, "close", figures.append)
    record = {"example_id": "0", "image_map": np.arange(64.0).reshape(8, 8) - 30, "box": (8, 4, 24, 20),
              "phrase": "red circle", "PGE": 0.1}
    assert report.write_gallery([record], lambda _: np.zeros((32, 32, 3)), str(tmp_path / "g.png"), "BII") == 1
    assert (tmp_path / "g.png").exists()
    (figure,) = figures
    drawn = [ax for ax in figure.axes if ax.images]
    assert len(drawn) == 2  # the image and the map
    for ax in drawn:
        left, right, bottom, top = ax.images[0].get_extent()
        assert (left, right, bottom, top) == (-0.5, 31.5, 31.5, -0.5)  # both in the image's pixel grid
        (box,) = ax.patches
        # pixel x spans [x - 0.5, x + 0.5): the box's edges fall on pixels 8..23 and 4..19
        assert box.get_x() - left == pytest.approx(8) and box.get_y() - top == pytest.approx(4)
        assert box.get_width() == pytest.approx(16) and box.get_height() == pytest.approx(16)
