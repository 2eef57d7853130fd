"""WeightedBanzhafInteractions with groups of positions as players (``feature_mask``):
against shapiq's exact Faith-Banzhaf index of the grouped game, built here by masking each
group's positions at the layer with the baseline's activation."""

import numpy as np
import pytest
import shapiq
import torch
from torch import nn
from conftest import caption, clip_layers

from captum_bilinear import DualEncoder, WeightedBanzhafInteractions

PADDING_A = 4  # side a's last position carries no input (the dual encoder's position mask)


class Nonlinear(nn.Module):
    """Mixes positions nonlinearly, so the game has interactions of every order."""

    def __init__(self, hidden: int, dim: int) -> None:
        super().__init__()
        self.mix = nn.Linear(hidden, hidden, dtype=torch.float64)
        self.out = nn.Linear(hidden, dim, dtype=torch.float64)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.mix(z))
        attended = torch.softmax(h @ h.transpose(1, 2), -1) @ h
        return self.out(attended.mean(1) + h.amax(1))


def padded_setup(positions=(5, 5), hidden=4, dim=6, seed=0):
    """The layer is the first module (an Identity): masking at the layer is replacing an
    input position by the baseline's."""
    torch.manual_seed(seed)
    encode_a = nn.Sequential(nn.Identity(), Nonlinear(hidden, dim))
    encode_b = nn.Sequential(nn.Identity(), Nonlinear(hidden, dim))

    def carries_input(inputs, extra):
        mask = torch.ones(inputs[0].shape[0], positions[0], dtype=torch.bool)
        mask[:, PADDING_A] = False
        return mask

    model = DualEncoder(encode_a, encode_b, normalize=True, scale=3.0, position_mask_a=carries_input)
    inputs = tuple(torch.randn(1, n, hidden, dtype=torch.float64) for n in positions)
    baselines = tuple(torch.randn(1, n, hidden, dtype=torch.float64) for n in positions)
    return model, (encode_a[0], encode_b[0]), inputs, baselines


def exact_grouped_fbii(model, inputs, baselines, groups_a, groups_b):
    """shapiq's exact FBII of the grouped game: player ``g`` of a side is the list of
    positions ``groups[g]``, all of which take the baseline when it is absent; the other
    positions are always the input's."""
    n_a = len(groups_a)

    def game(coalitions: np.ndarray) -> np.ndarray:
        present = torch.as_tensor(np.asarray(coalitions, dtype=bool))
        keep_a = torch.ones(len(present), inputs[0].shape[1], dtype=torch.bool)
        keep_b = torch.ones(len(present), inputs[1].shape[1], dtype=torch.bool)
        for g, members in enumerate(groups_a):
            keep_a[:, members] = present[:, g : g + 1]
        for h, members in enumerate(groups_b):
            keep_b[:, members] = present[:, n_a + h : n_a + h + 1]
        z_a = torch.where(keep_a.unsqueeze(-1), inputs[0], baselines[0])
        z_b = torch.where(keep_b.unsqueeze(-1), inputs[1], baselines[1])
        with torch.no_grad():
            return model(z_a, z_b).numpy()

    return shapiq.ExactComputer(game, n_a + len(groups_b))("FBII", order=2)


def test_equals_shapiq_exact_faith_banzhaf_of_the_grouped_game():
    model, layer, inputs, baselines = padded_setup()
    # side a: group 0 = {0, 3}, group 1 = {2, 4} of which 4 is padding (never masked), 1 left out;
    # group 2 = {4} only: padding, so no player. side b: 3 groups, position 2 left out.
    mask_a, mask_b = torch.tensor([0, -1, 1, 0, 2]), torch.tensor([1, 0, -1, 1, 2])
    groups_a, groups_b = [[0, 3], [2]], [[1], [0, 3], [4]]
    fbii = exact_grouped_fbii(model, inputs, baselines, groups_a, groups_b)
    method = WeightedBanzhafInteractions(model, layer, p=0.5)
    terms = method.attribute_terms(inputs, baselines, feature_mask=(mask_a, mask_b), budget=2**5, intra_modal=True,
                                   random_state=0)
    assert terms.cross.shape == (1, 3, 3) and terms.first_a.shape == (1, 3) and terms.intra_b.shape == (1, 3, 3)
    assert terms.players_a.tolist() == [[True, True, False]] and terms.players_b.tolist() == [[True, True, True]]
    assert terms.settings["samples"] == [2**5] and terms.settings["feature_mask"] is True

    def check(got, expected):
        assert abs(float(got) - expected) < 1e-10, (float(got), expected)

    check(terms.intercept[0], fbii[()])
    for g in range(2):
        check(terms.first_a[0, g], fbii[(g,)])
        for h in range(3):
            check(terms.cross[0, g, h], fbii[(g, 2 + h)])
    check(terms.intra_a[0, 0, 1], fbii[(0, 1)])
    for h in range(3):
        check(terms.first_b[0, h], fbii[(2 + h,)])
        for k in range(h + 1, 3):
            check(terms.intra_b[0, h, k], fbii[(2 + h, 2 + k)])
    assert terms.cross[0, 2].abs().max() == 0 and terms.first_a[0, 2] == 0  # the padding-only group
    assert abs(fbii[(0, 2)]) > 1e-3 and abs(fbii[(0, 1)]) > 1e-3  # not vacuous


def test_left_out_positions_and_padding_are_present_in_every_coalition(monkeypatch):
    import captum_bilinear.games as games

    model, layer, inputs, baselines = padded_setup()
    keeps = []
    original = games.masked_embeddings

    def recording(side, activation, reference, keep, internal_batch_size=None):
        keeps.append(keep.clone())
        return original(side, activation, reference, keep, internal_batch_size)

    monkeypatch.setattr(games, "masked_embeddings", recording)
    mask_a, mask_b = torch.tensor([0, -1, 1, 0, 1]), torch.tensor([1, 0, -1, 1, 2])
    WeightedBanzhafInteractions(model, layer).attribute(inputs, baselines, feature_mask=(mask_a, mask_b),
                                                        budget=2**5, random_state=0)
    keep_a, keep_b = keeps
    assert keep_a.shape == (4, 5) and keep_b.shape == (8, 5)  # every coalition of 2 and 3 groups
    assert keep_a[:, [1, PADDING_A]].all() and keep_b[:, 2].all()
    # a group's positions are present together
    assert torch.equal(keep_a[:, 0], keep_a[:, 3]) and torch.equal(keep_b[:, 0], keep_b[:, 3])
    assert not keep_a[:, [0, 2]].all() and not keep_b[:, [0, 1, 4]].all()


def test_players_unchanged_and_not_together_with_feature_mask(clip, pixels):
    method = WeightedBanzhafInteractions(clip, clip_layers(clip))
    inputs = (caption(320, 1125), pixels)
    with pytest.raises(ValueError, match=r"feature_mask: give players .* or feature_mask .*, not both"):
        method.attribute(inputs, feature_mask=(torch.tensor([-1, 0, 0, -1]), None), players=([1, 2], None))
    # every player its own group: the same game, the same coalitions, the same terms as players=
    ids_a = torch.tensor([-1, 0, 1, -1])
    ids_b = torch.arange(17) - 1  # CLS left out, each patch its own group
    by_groups = method.attribute_terms(inputs, feature_mask=(ids_a, ids_b), budget=300, random_state=0)
    by_players = method.attribute_terms(inputs, players=([1, 2], range(1, 17)), budget=300, random_state=0)
    torch.testing.assert_close(by_groups.cross, by_players.cross[:, 1:3, 1:], rtol=0, atol=0)
    torch.testing.assert_close(by_groups.first_b, by_players.first_b[:, 1:], rtol=0, atol=0)


def test_sizing_follows_the_groups(clip, pixels):
    method = WeightedBanzhafInteractions(clip, clip_layers(clip))
    mask = (torch.tensor([-1, 0, 0, 1, 1, -1]), torch.arange(17) // 5)  # 2 x 4 groups of 6 x 17 positions
    inputs = (caption(320, 1125, 539, 2368), pixels)
    terms = method.attribute_terms(inputs, feature_mask=mask, random_state=0)
    assert terms.cross.shape == (1, 2, 4) and terms.settings["samples"] == [2**2 * 2**4]  # both power sets
    with pytest.raises(ValueError, match=r"budget: 14 game values cannot identify .* of 2 x 4 players: .* >= 15 = 3 x 5"):
        method.attribute(inputs, feature_mask=mask, budget=14)


def hooks_of(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("mask, error, message", [
    ((None, torch.ones(2, 17)), TypeError, r"feature_mask\[1\]: a masking method masks each group's positions "
                                           r"together .* float group weights \(torch.float32\) cannot be masked"),
    ((torch.tensor([0, 1]), None, None), TypeError, r"feature_mask: expected None or a pair"),
    ((torch.tensor([-1, -1, -1, -1]), None), ValueError, r"feature_mask\[0\]: expected at least one position"),
    ((torch.zeros(2, 4, dtype=torch.long), None), ValueError, r"feature_mask\[0\]: group ids for a batch of 2"),
])
def test_bad_masks_refused_before_any_model_pass(clip, pixels, mask, error, message):
    rows = []
    handles = [m.register_forward_hook(lambda module, args, out: rows.append(1))
               for m in (clip.text_model.embeddings, clip.vision_model.embeddings)]
    try:
        with pytest.raises(error, match=message):
            WeightedBanzhafInteractions(clip, clip_layers(clip)).attribute((caption(320, 1125), pixels),
                                                                           feature_mask=mask)
    finally:
        for handle in handles:
            handle.remove()
    assert rows == [] and hooks_of(clip) == 0


def test_a_mask_for_other_positions_is_named(clip, pixels):
    with pytest.raises(ValueError, match=r"feature_mask\[1\]: a mask of 5 positions for a layer with 17 positions"):
        WeightedBanzhafInteractions(clip, clip_layers(clip)).attribute(
            (caption(320, 1125), pixels), feature_mask=(None, torch.zeros(5, dtype=torch.long)))
