"""InteractionCAM with groups of positions as players (``feature_mask``): the ungrouped
matrix summed over the groups with one-hot matrices built here, at the passes the groups
ask for (tangents and cotangents handed to the autodiff passes, counted)."""

import pytest
import torch
from conftest import caption, clip_layers, make_clip, padded_batch

from captum_bilinear import InteractionCAM
from captum_bilinear.selection import box_weights, span_mask


def one_hot(ids, groups):
    """``(groups, positions)``: 1 where position p has id g (-1: no group)."""
    matrix = torch.zeros(groups, len(ids), dtype=torch.float64)
    for position, group in enumerate(ids.tolist()):
        if group >= 0:
            matrix[group, position] = 1.0
    return matrix


@pytest.fixture(scope="module")
def pair():
    model = make_clip(dtype=torch.float64)
    input_ids = caption(320, 1125, 539, 320, 2368, 530)  # 8 tokens
    pixel_values = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    layers = (model.text_model.encoder.layers[1], model.vision_model.encoder.layers[1])
    return model, InteractionCAM(model, layers), (torch.cat([input_ids, input_ids.flip(1)]), pixel_values)


def test_groups_are_the_full_matrix_summed_over_them(pair):
    model, icam, inputs = pair
    full = icam.attribute(inputs)
    mask_a = torch.tensor([[0, 1, 1, 2, 2, 2, -1, 0], [2, 2, 0, 0, 1, -1, 1, 2]])  # per example, -1 left out
    mask_b = torch.arange(17) % 4  # one mask for the batch
    grouped = icam.attribute(inputs, feature_mask=(mask_a, mask_b))
    assert grouped.shape == (2, 3, 4)
    for index in range(2):
        expected = one_hot(mask_a[index], 3) @ full[index] @ one_hot(mask_b, 4).T
        torch.testing.assert_close(grouped[index], expected, rtol=1e-9, atol=1e-12)
    assert full.abs().max() > 1e-3  # not vacuous
    # one side grouped, the other per position; float weights (a box's patches by their share in it)
    weights = box_weights([(3.5, 6.0, 21.0, 17.25), (0, 0, 32, 32)], (32, 32), (4, 4), has_cls=True)
    boxes = icam.attribute(inputs, feature_mask=(None, weights))
    torch.testing.assert_close(boxes, full @ weights.T, rtol=1e-9, atol=1e-12)


def test_terms_are_per_group_and_say_so(pair):
    model, icam, inputs = pair
    mask_a = span_mask(8, [(1, 3), (4, 6)], rest=False)
    terms = icam.attribute_terms(inputs, feature_mask=(mask_a, None))
    assert terms.cross.shape == (2, 2, 17) and terms.first_a.shape == (2, 2) and terms.players_a.shape == (2, 2)
    assert terms.players_a.all() and terms.settings["feature_mask"] is True
    torch.testing.assert_close(terms.cross, icam.attribute(inputs, feature_mask=(mask_a, None)))


def test_players_are_the_groups_that_carry_input(pixels):
    """Example 0's last token is padding: its group of that position alone is no player."""
    model = make_clip()
    input_ids, attention_mask, pixel_values = padded_batch(pixels)
    terms = InteractionCAM(model, clip_layers(model)).attribute_terms(
        (input_ids, pixel_values), additional_forward_args=((attention_mask,), None),
        feature_mask=(torch.tensor([0, 0, 1, 1, 2]), None))
    assert terms.players_a.tolist() == [[True, True, False], [True, True, True]] and terms.players_b.all()


def test_passes_follow_the_groups_of_the_first_side(pair, monkeypatch):
    """One node: one JVP per group of the side that goes first (and one for what its
    groups leave out) and one VJP per group, not per position."""
    import captum_bilinear._utils.bilinear as bilinear

    model, icam, inputs = pair
    counts = {"jvp": 0, "vjp": 0}
    jvps, vjps = bilinear.integrated_jvps, bilinear.integrated_vjps

    def counted_jvps(side, reference, delta, direction, alphas, *args, groups=None, **kwargs):
        counts["jvp"] += len(alphas) * (delta.shape[1] if groups is None else groups.shape[0])
        return jvps(side, reference, delta, direction, alphas, *args, groups=groups, **kwargs)

    def counted_vjps(side, reference, delta, direction, alphas, weights, cotangents, *args, **kwargs):
        counts["vjp"] += len(alphas) * cotangents.shape[0]
        return vjps(side, reference, delta, direction, alphas, weights, cotangents, *args, **kwargs)

    monkeypatch.setattr(bilinear, "integrated_jvps", counted_jvps)
    monkeypatch.setattr(bilinear, "integrated_vjps", counted_vjps)

    def passes(mask):
        counts.update(jvp=0, vjp=0)
        icam.attribute((inputs[0][:1], inputs[1][:1]), feature_mask=mask)
        return dict(counts)

    assert passes(None) == {"jvp": 8, "vjp": 8}  # the caption goes first: 8 tokens
    # three spans and what they leave out: 4 tangents, 3 cotangents
    assert passes((span_mask(8, [(1, 3), (3, 5), (5, 7)], rest=False), None)) == {"jvp": 4, "vjp": 3}
    # one box on the image: the image goes first (box and rest), one cotangent
    assert passes((None, box_weights((0, 0, 16, 16), (32, 32), (4, 4)))) == {"jvp": 2, "vjp": 1}


class RowCounter:
    """Rows through the given modules (forward hooks)."""

    def __init__(self, modules):
        self.rows = 0
        self.handles = [m.register_forward_hook(self.count) for m in modules]

    def count(self, module, inputs, output):
        self.rows += (output[0] if isinstance(output, tuple) else output).shape[0]

    def close(self):
        for handle in self.handles:
            handle.remove()


@pytest.mark.parametrize("mask, error, message", [
    ((torch.tensor([0, 1]), None, 3), TypeError, r"feature_mask: expected None or a pair"),
    (("ids", None), TypeError, r"feature_mask\[0\]: expected None or a Tensor"),
    ((torch.ones(8, dtype=torch.bool), None), TypeError, r"feature_mask\[0\]: expected integer group ids"),
    ((torch.tensor([0, -2, 0, 0, 0, 0, 0, 0]), None), ValueError, r"must be -1 \(left out\) or 0 \.\. G-1"),
    ((None, torch.full((17,), -1)), ValueError, r"feature_mask\[1\]: expected at least one position in a group"),
    ((torch.zeros(3, 8, dtype=torch.long), None), ValueError, r"group ids for a batch of 3, inputs of batch 2"),
    ((None, torch.ones(3, 2, 17)), ValueError, r"feature_mask\[1\]: weights for a batch of 3, inputs of batch 2"),
])
def test_bad_masks_are_refused_before_any_pass(pair, mask, error, message):
    model, icam, inputs = pair
    counter = RowCounter([model.text_model.embeddings, model.vision_model.embeddings])
    try:
        with pytest.raises(error, match=message):
            icam.attribute(inputs, feature_mask=mask)
    finally:
        counter.close()
    assert counter.rows == 0


def test_a_mask_for_other_positions_is_refused_before_the_attribution(pair, monkeypatch):
    import captum_bilinear._utils.bilinear as bilinear

    model, icam, inputs = pair

    def no_pass(*args, **kwargs):
        raise AssertionError("an attribution pass ran")

    monkeypatch.setattr(bilinear, "integrated_jvps", no_pass)
    monkeypatch.setattr(bilinear, "integrated_vjps", no_pass)
    with pytest.raises(ValueError, match=r"feature_mask\[1\]: a mask of 5 positions for a layer with 17 positions"):
        icam.attribute(inputs, feature_mask=(None, torch.zeros(5, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"feature_mask\[0\]: a mask of 9 positions for a layer with 8 positions"):
        icam.attribute(inputs, feature_mask=(torch.ones(2, 4, 9), None))
