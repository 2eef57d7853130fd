"""Plots: Captum draws them; every panel of a figure shares one colour scale."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib import pyplot as plt

from captum_bilinear.visualization import (
    caption_colours,
    caption_html,
    colour_of,
    common_scale,
    image_heatmap,
    plot_interaction_figure,
)


def test_heatmap_data_is_on_the_given_scale():
    patch_map = torch.tensor([[1.0, -0.5], [0.0, 0.25]])
    ax = image_heatmap(np.zeros((4, 4, 3)), patch_map, scale=2.0)
    heat = ax.images[-1]
    expected = np.repeat(np.repeat(patch_map.numpy() / 2.0, 2, 0), 2, 1)
    np.testing.assert_allclose(np.asarray(heat.get_array()), expected)
    assert heat.get_clim() == (-1.0, 1.0)
    assert heat.get_cmap().name == "bwr"
    plt.close("all")


def test_all_zero_map_draws_zeros():
    ax = image_heatmap(np.ones((4, 4, 3)), torch.zeros(2, 2))
    assert np.all(np.asarray(ax.images[-1].get_array()) == 0)
    plt.close("all")


def test_figure_panels_share_one_scale():
    A = torch.zeros(4, 5)
    A[1, 4] = 0.2  # span token 1 -> bottom-right patch
    A[2, 1] = -0.8  # token 2 -> top-left patch (inside the box)
    first_order = torch.tensor([[0.1, 0.0], [0.0, 0.4]])
    fig = plot_interaction_figure(np.zeros((16, 16, 3)), ["[BOS]", "red", "dot", "[EOS]"], A, (1, 2),
                                  box=(0, 0, 8, 8), first_order_map=first_order, outlier_perc=0)
    heat_maps = [ax.images[-1] for ax in fig.axes if len(ax.images) == 2]  # Captum's gray image + heat map
    assert len(heat_maps) == 2
    # The common scale is the largest magnitude over all panels: |-0.8| from the box's caption values.
    assert np.asarray(heat_maps[0].get_array()).max() == pytest.approx(0.2 / 0.8)
    assert np.asarray(heat_maps[1].get_array()).max() == pytest.approx(0.4 / 0.8)
    colourbar = fig.axes[-1]
    assert colourbar.get_xlim() == pytest.approx((-0.8, 0.8))
    box_caption = [ax for ax in fig.axes if len(ax.texts) == 4][-1]
    token_colours = [text.get_bbox_patch().get_facecolor() for text in box_caption.texts]
    assert token_colours[2] == pytest.approx(colour_of(-0.8, 0.8))  # fully blue
    assert token_colours[1] == pytest.approx(colour_of(0.0, 0.8))
    plt.close("all")


def test_caption_html_and_errors():
    html = caption_html(["a", "dog"], [-1.0, 1.0])
    assert "#0000ff" in html and "#ff0000" in html
    with pytest.raises(ValueError, match="values: expected 2 values"):
        caption_html(["a", "dog"], [1.0])
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="values: expected 3 values"):
        caption_colours(ax, ["a", "b", "c"], [1.0])
    with pytest.raises(ValueError, match="interactions: expected"):
        plot_interaction_figure(np.zeros((16, 16, 3)), ["a"], torch.zeros(2, 5), (0, 1), box=(0, 0, 8, 8))
    with pytest.raises(ValueError, match="box"):
        image_heatmap(np.zeros((16, 16, 3)), torch.zeros(2, 2), box=(0, 0, 17, 8))
    assert common_scale(torch.zeros(3)) == 1.0
    plt.close("all")


def test_one_panel_per_span_without_box():
    A = torch.zeros(5, 5)
    A[1, 1], A[3, 4] = 0.5, -0.25
    fig = plot_interaction_figure(np.zeros((16, 16, 3)), ["[BOS]", "red", "and", "blue", "[EOS]"], A, [(1, 2), (3, 4)],
                                  outlier_perc=0)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["input, caption spans in bold", '"red" -> image', '"blue" -> image']
    heat_maps = [ax.images[-1] for ax in fig.axes if len(ax.images) == 2]
    assert np.asarray(heat_maps[0].get_array())[0, 0] == pytest.approx(1.0)
    assert np.asarray(heat_maps[1].get_array())[-1, -1] == pytest.approx(-0.5)
    plt.close("all")


def test_common_scale_saturates_a_dominant_value_like_captum():
    values = torch.tensor([0.1] * 99 + [50.0])  # one outlier
    assert common_scale(values) == 50.0
    assert common_scale(values, outlier_perc=2) == pytest.approx(0.1)
    A = torch.zeros(4, 5)
    A[1, 1:] = 0.1
    A[3, 1:] = 5.0  # the EOS token interacts with everything
    fig = plot_interaction_figure(np.zeros((16, 16, 3)), ["[BOS]", "red", "dot", "[EOS]"], A, (1, 2),
                                  box=(0, 0, 16, 16), outlier_perc=50)
    span_map = [ax.images[-1] for ax in fig.axes if len(ax.images) == 2][0]
    assert np.asarray(span_map.get_array()).max() == pytest.approx(1.0)  # the span is visible, not washed out
    plt.close("all")
