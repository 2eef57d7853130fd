"""Plots: Captum draws the image unchanged, the maps lie over it transparently where they
are near 0; every panel of a figure shares one colour scale per unit, special positions
stay off it."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib import pyplot as plt

from captum_bilinear.visualization import (
    NEUTRAL,
    caption_colours,
    caption_html,
    colour_of,
    common_scale,
    image_heatmap,
    plot_interaction_figure,
    special_positions,
)

TOKENS = ["[BOS]", "red", "dot", "[EOS]"]


def heat_panels(fig):
    """The axes of image maps: Captum's image plus the map laid over it."""
    return [ax for ax in fig.axes if len(ax.images) == 2]


def colour_bars(fig):
    return [ax for ax in fig.axes if ax.get_xlabel().startswith(("interaction", "Captum", "LIG"))]


def caption_axes(fig):
    return [ax for ax in fig.axes if ax.get_title(loc="left")][-1]


def test_heatmap_data_is_on_the_given_scale():
    patch_map = torch.tensor([[1.0, -0.5], [0.0, 0.25]])
    ax = image_heatmap(np.zeros((4, 4, 3)), patch_map, scale=2.0)
    heat = ax.images[-1]
    expected = np.repeat(np.repeat(patch_map.numpy() / 2.0, 2, 0), 2, 1)
    np.testing.assert_allclose(np.asarray(heat.get_array()), expected)
    assert heat.get_clim() == (-1.0, 1.0)
    assert heat.get_cmap().name == "bwr"
    plt.close("all")


def test_the_image_stays_legible_under_the_map():
    """The image is drawn in colour, muted to half its saturation where the map is 0 and to
    grey under its strongest values (not Captum's grey blend of everything), and the map is
    transparent where it is 0 and most opaque at the scale's limit."""
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    patch_map = torch.tensor([[0.0, 1.0], [-0.75, 0.0]])
    ax = image_heatmap(picture, patch_map, scale=1.0, alpha=0.8)
    drawn = np.asarray(ax.images[0].get_array(), dtype=np.float64)
    assert drawn.shape == (16, 16, 3)
    rgb = picture / 255.0
    grey = 0.3 * rgb[..., :1] + 0.59 * rgb[..., 1:2] + 0.11 * rgb[..., 2:]  # W3C luminosity, as a canvas keeps it
    muted = 0.5 + 0.5 * np.abs(np.repeat(np.repeat(patch_map.numpy(), 8, 0), 8, 1))[..., None]
    expected = rgb * (1 - muted) + grey * muted
    if drawn.max() > 1.5:  # Captum hands the image on as 0..255
        expected = expected * 255
    np.testing.assert_allclose(drawn, expected, atol=1.0 if drawn.max() > 1.5 else 1 / 255)
    alpha = np.asarray(ax.images[-1].get_alpha())
    expected = 0.8 * np.abs(np.repeat(np.repeat(patch_map.numpy(), 8, 0), 8, 1))
    np.testing.assert_allclose(alpha, expected)
    assert alpha[:8, :8].max() == 0.0  # the scene shows through untouched where the map is 0
    # outlines where the map passes +-half the scale: one positive, one negative region
    assert len(ax.collections) == 2
    plt.close("all")


def test_all_zero_map_draws_zeros():
    ax = image_heatmap(np.ones((4, 4, 3)), torch.zeros(2, 2))
    assert np.all(np.asarray(ax.images[-1].get_array()) == 0)
    assert np.all(np.asarray(ax.images[-1].get_alpha()) == 0)
    plt.close("all")


def test_figure_panels_share_one_scale():
    A = torch.zeros(4, 5)
    A[1, 4] = 0.2  # span token 1 -> bottom-right patch
    A[2, 1] = -0.8  # token 2 -> top-left patch (inside the box)
    first_order = torch.tensor([[0.1, 0.0], [0.0, 0.4]])
    fig = plot_interaction_figure(np.zeros((16, 16, 3)), TOKENS, A, (1, 2), box=(0, 0, 8, 8),
                                  first_order_map=first_order, outlier_perc=0, share_first_order_scale=True)
    heat_maps = [ax.images[-1] for ax in heat_panels(fig)]
    assert len(heat_maps) == 2
    # The common scale is the largest magnitude over all panels: |-0.8| from the box's caption values.
    assert np.asarray(heat_maps[0].get_array()).max() == pytest.approx(0.2 / 0.8)
    assert np.asarray(heat_maps[1].get_array()).max() == pytest.approx(0.4 / 0.8)
    (colourbar,) = colour_bars(fig)
    assert colourbar.get_xlim() == pytest.approx((-0.8, 0.8))
    assert colourbar.get_xlabel() == "interaction (similarity)"
    token_colours = [text.get_bbox_patch().get_facecolor() for text in caption_axes(fig).texts[:4]]
    assert token_colours[2] == pytest.approx(colour_of(-0.8, 0.8))  # fully blue
    assert token_colours[1] == pytest.approx(colour_of(0.0, 0.8))
    plt.close("all")


def test_special_positions_stay_off_the_scale_and_their_values_are_stated():
    """One dominant [EOS] value must not wash out every panel: it is drawn grey, its value
    written below the caption; the image's CLS value is written under each span's map."""
    A = torch.zeros(4, 5)
    A[1, 1] = 0.1  # "red" -> top-left patch (the box)
    A[3, 1] = 5.0  # [EOS] -> the box, fifty times larger
    A[1, 0] = 0.7  # "red" -> CLS
    fig = plot_interaction_figure(np.zeros((16, 16, 3)), TOKENS, A, (1, 2), box=(0, 0, 8, 8), outlier_perc=0)
    (colourbar,) = colour_bars(fig)
    assert colourbar.get_xlim() == pytest.approx((-0.1, 0.1))
    texts = caption_axes(fig).texts
    assert texts[3].get_text() == "[EOS]" and texts[3].get_bbox_patch().get_facecolor() == pytest.approx(NEUTRAL)
    assert texts[1].get_bbox_patch().get_facecolor() == pytest.approx(colour_of(0.1, 0.1))  # fully red
    assert "[EOS] +5" in texts[-1].get_text() and "[BOS] +0" in texts[-1].get_text()
    (span_panel,) = heat_panels(fig)
    assert np.asarray(span_panel.images[-1].get_array()).max() == pytest.approx(1.0)
    assert "CLS" in span_panel.get_xlabel() and "+0.7" in span_panel.get_xlabel()
    assert special_positions(TOKENS) == [0, 3]
    plt.close("all")


@pytest.mark.parametrize("share", [False, True])
def test_each_unit_has_its_own_scale_and_named_bar(share):
    """ITSM's values are cosines of embeddings, LayerIntegratedGradients' are in similarity
    units: the two get their own colour scales, each bar naming its unit (even when asked to
    share: the units differ)."""
    A = torch.zeros(4, 5)
    A[1, 4] = 0.5
    first_order = torch.tensor([[0.01, 0.0], [0.0, -0.02]])
    fig = plot_interaction_figure(np.zeros((16, 16, 3)), TOKENS, A, (1, 2), first_order_map=first_order,
                                  first_order_title="Captum LayerIntegratedGradients", outlier_perc=0,
                                  units="cosine of token and patch embeddings", first_order_units="similarity",
                                  share_first_order_scale=share)
    bars = colour_bars(fig)
    assert [bar.get_xlabel() for bar in bars] == ["interaction (cosine of token and patch embeddings)",
                                                 "Captum LayerIntegratedGradients (similarity)"]
    assert bars[0].get_xlim() == pytest.approx((-0.5, 0.5)) and bars[1].get_xlim() == pytest.approx((-0.02, 0.02))
    span_panel, first_panel = heat_panels(fig)
    assert np.asarray(first_panel.images[-1].get_array()).min() == pytest.approx(-1.0)
    plt.close("all")


def test_a_first_order_map_has_its_own_scale_by_default():
    """A first-order map attributes the whole score: on a shared scale it would wash out
    the spans' interactions."""
    A = torch.zeros(4, 5)
    A[1, 4] = 0.01
    first_order = torch.tensor([[0.5, 0.0], [0.0, 0.2]])
    fig = plot_interaction_figure(np.zeros((16, 16, 3)), TOKENS, A, (1, 2), first_order_map=first_order,
                                  first_order_title="LIG", outlier_perc=0)
    bars = colour_bars(fig)
    assert [bar.get_xlabel() for bar in bars] == ["interaction (similarity)", "LIG (similarity)"]
    assert bars[0].get_xlim() == pytest.approx((-0.01, 0.01)) and bars[1].get_xlim() == pytest.approx((-0.5, 0.5))
    span_panel, _ = heat_panels(fig)
    assert np.asarray(span_panel.images[-1].get_array()).max() == pytest.approx(1.0)
    plt.close("all")


def test_many_spans_wrap_into_full_rows_and_the_size_stays_bounded():
    tokens = ["[BOS]"] + [f"w{i}" for i in range(40)] + ["[EOS]"]
    A = torch.randn(len(tokens), 5, generator=torch.Generator().manual_seed(0))
    spans = [(i, i + 1) for i in range(1, 8)]  # 7 spans + input = 8 panels
    fig = plot_interaction_figure(np.zeros((16, 16, 3)), tokens, A, spans)
    width, height = fig.get_size_inches()
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 8
    columns = sorted({round(ax.get_position().x0, 3) for ax in panels})
    rows = sorted({round(ax.get_position().y0, 3) for ax in panels})
    assert len(columns) == 4 and len(rows) == 2  # two full rows of four, no empty cells
    assert width <= 6 * 2.9 and height <= 10
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
    with pytest.raises(ValueError, match="span_labels: expected 1 labels"):
        plot_interaction_figure(np.zeros((16, 16, 3)), TOKENS, torch.zeros(4, 5), (1, 2), span_labels=["a", "b"])
    with pytest.raises(ValueError, match="box"):
        image_heatmap(np.zeros((16, 16, 3)), torch.zeros(2, 2), box=(0, 0, 17, 8))
    assert common_scale(torch.zeros(3)) == 1.0
    plt.close("all")


def test_one_panel_per_span_without_box():
    A = torch.zeros(5, 5)
    A[1, 1], A[3, 4] = 0.5, -0.25
    fig = plot_interaction_figure(np.zeros((16, 16, 3)), ["[BOS]", "red", "and", "blue", "[EOS]"], A, [(1, 2), (3, 4)],
                                  outlier_perc=0, span_labels=["red", "blue one"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["input", '"red" -> image', '"blue one" -> image']
    heat_maps = [ax.images[-1] for ax in heat_panels(fig)]
    assert np.asarray(heat_maps[0].get_array())[0, 0] == pytest.approx(1.0)
    assert np.asarray(heat_maps[1].get_array())[-1, -1] == pytest.approx(-0.5)
    plt.close("all")


def test_common_scale_saturates_a_dominant_value_like_captum():
    values = torch.tensor([0.1] * 99 + [50.0])  # one outlier
    assert common_scale(values) == 50.0
    assert common_scale(values, outlier_perc=2) == pytest.approx(0.1)
    A = torch.zeros(4, 5)
    A[1, 1:] = 0.1
    A[2, 1:] = 5.0  # a content token interacts with everything
    fig = plot_interaction_figure(np.zeros((16, 16, 3)), TOKENS, A, (1, 2),
                                  box=(0, 0, 16, 16), outlier_perc=50)
    span_map = heat_panels(fig)[0].images[-1]
    assert np.asarray(span_map.get_array()).max() == pytest.approx(1.0)  # the span is visible, not washed out
    plt.close("all")


def _rendered(ax):
    ax.figure.canvas.draw()
    return np.asarray(ax.figure.canvas.buffer_rgba())[..., :3].astype(np.float64) / 255


def _in_axes(ax, rendered, x, y):
    """The rendered pixel at data coordinates (x, y) of an image axes."""
    column, row = ax.transData.transform((x, y))
    return rendered[int(round(rendered.shape[0] - row)), int(round(column))]


@pytest.mark.parametrize("colour, value", [((0.9, 0.08, 0.08), 1.0), ((0.1, 0.12, 0.9), -1.0)])
def test_a_map_stays_visible_over_an_object_of_its_own_colour(colour, value):
    """A red map over a red object (blue over blue) was drawn in nearly the object's own
    colour, with a dark red (navy) outline lost against it. Now the map's patch must stand
    out from the object around it, and its outline from both."""
    picture = np.ones((64, 64, 3)) * np.array(colour)  # the object fills the image
    patch_map = torch.zeros(8, 8)
    patch_map[3, 3] = value
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    image_heatmap(picture, patch_map, ax=ax, scale=1.0)
    rendered = _rendered(ax)
    inside = _in_axes(ax, rendered, 28, 28)  # the map's patch covers pixels 24..31
    outside = _in_axes(ax, rendered, 10, 50)
    assert np.abs(inside - outside).sum() > 0.35, (inside, outside)  # the patch stands out (it was 0.20-0.25)
    edge = [_in_axes(ax, rendered, x, 28) for x in np.linspace(22.5, 24.5, 21)]  # across the outline
    assert max(float(np.abs(pixel - outside).sum()) for pixel in edge) > 1.0  # a white halo on a saturated colour
    plt.close("all")


@pytest.mark.parametrize("spans", [(1, 9), [(1, 2), (5, 9)], (2, 1)])
def test_a_span_beyond_the_tokens_is_refused_not_drawn(spans):
    """A span past the last token was drawn as the tokens it reached (or an all-zero map
    titled with no word), silently."""
    from captum_bilinear.visualization import plot_interaction_figure

    with pytest.raises(ValueError, match="spans: "):
        plot_interaction_figure(np.zeros((16, 16, 3), np.uint8), ["a", "b", "c"], torch.ones(3, 5), spans,
                                grid_size=(2, 2))
