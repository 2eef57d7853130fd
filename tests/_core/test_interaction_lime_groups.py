"""InteractionLIME with groups of positions as players (``feature_mask``): on a dual encoder
whose masked similarity is bilinear in the kept positions, the surrogate over the groups
recovers the closed form summed over the groups (one-hot matrices built here)."""

import pytest
import torch
from torch import nn
from conftest import caption, clip_layers

from captum_bilinear import DualEncoder, InteractionLIME


class SumLinear(nn.Module):
    """``g(z) = sum_s W^T z[s]``: linear in each position's activation."""

    def __init__(self, hidden: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(hidden, dim, dtype=torch.float64))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.sum(1) @ self.weight


def bilinear_setup(scale=2.0, positions=(5, 7), hidden=4, dim=6, seed=0):
    """Layer = an Identity, zero reference activation (the default zero baseline), no
    normalization: similarity(x_a, x_b) = sum x_a[s] x_b[p] A[s, p] with A below."""
    torch.manual_seed(seed)
    encode_a = nn.Sequential(nn.Identity(), SumLinear(hidden, dim))
    encode_b = nn.Sequential(nn.Identity(), SumLinear(hidden, dim))
    model = DualEncoder(encode_a, encode_b, normalize=False, scale=scale)
    z_a = torch.randn(2, positions[0], hidden, dtype=torch.float64)
    z_b = torch.randn(2, positions[1], hidden, dtype=torch.float64)
    truth = scale * torch.einsum("bsd,bpd->bsp", z_a @ encode_a[1].weight, z_b @ encode_b[1].weight).detach()
    return model, (encode_a[0], encode_b[0]), (z_a, z_b), truth


def one_hot(ids, groups):
    matrix = torch.zeros(groups, len(ids), dtype=torch.float64)
    for position, group in enumerate(ids.tolist()):
        if group >= 0:
            matrix[group, position] = 1.0
    return matrix


def test_recovers_the_grouped_closed_form():
    """Every position in a group: the masked similarity is bilinear in the groups' keep
    indicators with matrix ``one_hot_a A one_hot_b^T``, which the fit must recover."""
    model, layer, inputs, truth = bilinear_setup()
    mask_a = torch.tensor([[0, 1, 1, 2, 0], [2, 2, 1, 0, 1]])  # per example
    mask_b = torch.tensor([0, 0, 1, 2, 3, 3, 1])  # one for the batch
    terms = InteractionLIME(model, layer).attribute_terms(inputs, feature_mask=(mask_a, mask_b), n_samples=30,
                                                          alpha=0.0, random_state=0)
    assert terms.cross.shape == (2, 3, 4) and terms.players_a.shape == (2, 3) and terms.settings["feature_mask"]
    for index in range(2):
        expected = one_hot(mask_a[index], 3) @ truth[index] @ one_hot(mask_b, 4).T
        assert expected.abs().max() > 0.5  # not vacuous
        torch.testing.assert_close(terms.cross[index], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(terms.intercept, torch.zeros(2, dtype=torch.float64), atol=1e-6, rtol=0)
    assert terms.settings["samples"][0] < InteractionLIME.minimum_samples(5, 7)  # sized by the groups


def test_left_out_positions_are_kept_in_every_mask(monkeypatch):
    import captum_bilinear.games as games

    model, layer, inputs, _ = bilinear_setup()
    keeps = []
    original = games.masked_embeddings

    def recording(side, activation, reference, keep, internal_batch_size=None):
        keeps.append(keep.clone())
        return original(side, activation, reference, keep, internal_batch_size)

    monkeypatch.setattr(games, "masked_embeddings", recording)
    mask_a, mask_b = torch.tensor([0, -1, 1, 1, -1]), torch.tensor([-1, 0, 0, 1, 2, 2, -1])
    InteractionLIME(model, layer).attribute((inputs[0][:1], inputs[1][:1]), feature_mask=(mask_a, mask_b),
                                            n_samples=30, random_state=0)
    # the cosine weights' unmasked rows first, then the masks
    keep_a, keep_b = torch.cat(keeps[0::2]), torch.cat(keeps[1::2])
    assert keep_a[:, [1, 4]].all() and keep_b[:, [0, 6]].all()
    assert torch.equal(keep_a[:, 2], keep_a[:, 3]) and torch.equal(keep_b[:, 4], keep_b[:, 5])
    assert not keep_a[:, 0].all() and not keep_b[:, 3].all()


def test_not_with_players_nor_float_weights_and_sized_by_the_groups(clip, pixels):
    lime = InteractionLIME(clip, clip_layers(clip))
    inputs = (caption(320, 1125), pixels)
    with pytest.raises(ValueError, match=r"feature_mask: give players .* not both"):
        lime.attribute(inputs, feature_mask=(None, torch.arange(17) % 2), players=(None, range(1, 17)))
    with pytest.raises(TypeError, match=r"feature_mask\[0\]: a masking method .* float group weights"):
        lime.attribute(inputs, feature_mask=(torch.ones(1, 4, dtype=torch.float64), None))
    with pytest.raises(ValueError, match=r"n_samples: 5 masked pairs cannot identify a 1 x 2 .* >= 6"):
        lime.attribute(inputs, feature_mask=(torch.tensor([-1, 0, 0, -1]), torch.arange(17) % 2), n_samples=5)
