"""Checks of ``feature_mask`` (groups of positions as players)."""

import pytest
import torch

from captum_bilinear._utils.groups import check_feature_mask


@pytest.mark.parametrize("largest", [8, 10**12])
def test_a_group_id_beyond_the_positions_is_refused_before_any_allocation(largest):
    """Ids 0 .. G-1 over 8 positions leave a group empty once G > 8; an id of 10**12 made
    ``weights`` allocate 10**12 x positions float64 (a RuntimeError of the allocator)."""
    ids = torch.tensor([0, 0, 0, largest, 0, 0, 0, 0])
    with pytest.raises(ValueError, match=rf"feature_mask\[0\]: group id {largest} .* 8 positions"):
        check_feature_mask((ids, None), batch=1)


def test_every_position_its_own_group_is_still_accepted():
    mask_a, _ = check_feature_mask((torch.arange(8), None), batch=1)
    assert mask_a.groups == 8
    assert torch.equal(mask_a.weights(0, 8, "feature_mask[0]"), torch.eye(8, dtype=torch.float64))
