"""TokenPatchSimilarity (ITSM) with groups (``feature_mask``): the full map summed over
the groups with one-hot matrices built here."""

import pytest
import torch
from conftest import caption, make_clip

from captum_bilinear import TokenPatchSimilarity
from captum_bilinear.selection import box_weights


def one_hot(ids, groups):
    matrix = torch.zeros(groups, len(ids), dtype=torch.float64)
    for position, group in enumerate(ids.tolist()):
        if group >= 0:
            matrix[group, position] = 1.0
    return matrix


@pytest.fixture(scope="module")
def model():
    return make_clip(dtype=torch.float64)


@pytest.mark.parametrize("variant", ["output", "hidden"])
def test_groups_are_the_full_map_summed_over_them(model, variant):
    layer = (model.text_model.encoder.layers[1], model.vision_model.encoder.layers[1])
    itsm = TokenPatchSimilarity(model, layer, variant=variant)
    input_ids = torch.cat([caption(320, 1125, 539), caption(539, 1125, 320)])
    pixel_values = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    full = itsm.attribute((input_ids, pixel_values))
    mask_a = torch.tensor([[-1, 0, 0, 1, -1], [-1, 1, 0, 0, 0]])
    mask_b = torch.where(torch.arange(17) == 0, -1, torch.arange(17) % 3)  # CLS left out (id -1)
    terms = itsm.attribute_terms((input_ids, pixel_values), feature_mask=(mask_a, mask_b))
    assert terms.cross.shape == (2, 2, 3) and terms.settings["feature_mask"] is True
    for index in range(2):
        expected = one_hot(mask_a[index], 2) @ full[index] @ one_hot(mask_b, 3).T
        torch.testing.assert_close(terms.cross[index], expected, rtol=1e-9, atol=1e-12)
    weights = box_weights([(3.5, 6.0, 21.0, 17.25)], (32, 32), (4, 4), has_cls=True)
    boxes = itsm.attribute((input_ids, pixel_values), feature_mask=(None, weights))
    torch.testing.assert_close(boxes, full @ weights.T, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mask, error, message", [
    ((torch.tensor([0, 1]),), TypeError, r"feature_mask: expected None or a pair"),
    ((None, torch.tensor([[0.5, 1.5]])), ValueError, r"feature_mask\[1\]: a mask of 2 positions for a layer with 17"),
    ((torch.zeros(2, 5, dtype=torch.long), None), ValueError, r"feature_mask\[0\]: group ids for a batch of 2, inputs "
                                                              r"of batch 1"),
])
def test_bad_masks(model, mask, error, message):
    itsm = TokenPatchSimilarity(model, (model.text_model.encoder.layers[1], model.vision_model.encoder.layers[1]))
    with pytest.raises(error, match=message):
        itsm.attribute((caption(320, 1125, 539), torch.zeros(1, 3, 32, 32, dtype=torch.float64)), feature_mask=mask)
