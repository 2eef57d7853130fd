"""WeightedBanzhafInteractions against independent oracles: shapiq's exact Faith-Banzhaf
index of a game computed by hand, and a game that is 2-additive by construction."""


import numpy as np
import pytest
import shapiq
import torch
from torch import nn
from conftest import caption, clip_layers, make_clip, padded_batch

from captum_bilinear import DualEncoder
from captum_bilinear import InteractionTerms
from captum_bilinear._core.weighted_banzhaf import WeightedBanzhafInteractions


def hooks_of(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


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


def nonlinear_setup(positions=(3, 4), hidden=5, dim=6, seed=0):
    torch.manual_seed(seed)
    encode_a = nn.Sequential(nn.Identity(), Nonlinear(hidden, dim))
    encode_b = nn.Sequential(nn.Identity(), Nonlinear(hidden, dim))
    model = DualEncoder(encode_a, encode_b, normalize=True, scale=3.0)
    inputs = tuple(torch.randn(1, n, hidden, dtype=torch.float64) for n in positions)
    baselines = tuple(torch.randn(1, n, hidden, dtype=torch.float64) for n in positions)
    return model, (encode_a[0], encode_b[0]), inputs, baselines


def exact_fbii(model, inputs, baselines, players_a, players_b):
    """shapiq's exact FBII of the game computed by hand: the layer is the first module, so
    masking at the layer is replacing input positions by the baseline's."""
    n_a = len(players_a)

    def game(coalitions: np.ndarray) -> np.ndarray:
        present = torch.as_tensor(np.asarray(coalitions, dtype=bool))
        keep_a = torch.ones(len(present), inputs[0].shape[1], dtype=torch.bool)
        keep_b = torch.ones(len(present), inputs[1].shape[1], dtype=torch.bool)
        keep_a[:, players_a] = present[:, :n_a]
        keep_b[:, players_b] = present[:, n_a:]
        z_a = torch.where(keep_a.unsqueeze(-1), inputs[0], baselines[0])
        z_b = torch.where(keep_b.unsqueeze(-1), inputs[1], baselines[1])
        with torch.no_grad():
            return model(z_a, z_b).numpy()

    computer = shapiq.ExactComputer(game, n_a + len(players_b))
    return computer("FBII", order=2), computer("BV", order=1)


@pytest.mark.parametrize("players", [None, ([0, 2], [0, 2, 3, 4])])
def test_equals_shapiq_exact_faith_banzhaf_with_a_budget_covering_every_coalition(players):
    positions = (3, 4) if players is None else (3, 5)
    model, layer, inputs, baselines = nonlinear_setup(positions)
    players_a, players_b = players or (list(range(3)), list(range(4)))
    fbii, banzhaf_values = exact_fbii(model, inputs, baselines, players_a, players_b)
    n_a = len(players_a)
    method = WeightedBanzhafInteractions(model, layer, p=0.5)
    terms = method.attribute_terms(inputs, baselines, budget=2 ** 7, intra_modal=True, players=players, random_state=0)
    assert isinstance(terms, InteractionTerms) and terms.cross.shape == (1,) + positions
    assert terms.intra_a.shape == (1, positions[0], positions[0]) and terms.intra_b.shape == (1, positions[1], positions[1])

    def check(got, expected):
        assert abs(float(got) - expected) < 1e-10, (float(got), expected)

    check(terms.intercept[0], fbii[()])
    for i, s in enumerate(players_a):
        check(terms.first_a[0, s], fbii[(i,)])
        for j, p in enumerate(players_b):
            check(terms.cross[0, s, p], fbii[(i, n_a + j)])
        for k, t in enumerate(players_a[i + 1 :], start=i + 1):
            check(terms.intra_a[0, s, t], fbii[(i, k)])
            check(terms.intra_a[0, t, s], fbii[(i, k)])
    for j, p in enumerate(players_b):
        check(terms.first_b[0, p], fbii[(n_a + j,)])
        for k, q in enumerate(players_b[j + 1 :], start=j + 1):
            check(terms.intra_b[0, p, q], fbii[(n_a + j, n_a + k)])
    assert abs(fbii[(0, n_a)]) > 1e-3 and abs(fbii[(0, 1)]) > 1e-3  # not vacuous
    # non-players: zero terms
    if players is not None:
        assert terms.cross[0, 1].abs().max() == 0 and terms.first_b[0, 1] == 0 and terms.intra_b[0, 1].abs().max() == 0
        assert terms.players_b.tolist() == [[True, False, True, True, True]]
    # FIxLIP's Theorem 1: e_i + p * sum_j e_ij is the Banzhaf value of the game
    values_a, values_b = terms.first_order_values()
    for i, s in enumerate(players_a):
        check(values_a[0, s], banzhaf_values[(i,)])
    for j, p in enumerate(players_b):
        check(values_b[0, p], banzhaf_values[(n_a + j,)])

    # Without intra-modal terms, the cross pairs are unchanged (and attribute returns them)
    cross = method.attribute(inputs, baselines, budget=2 ** 7, players=players, random_state=0)
    torch.testing.assert_close(cross, terms.cross, atol=1e-12, rtol=0)
    only = method.attribute_terms(inputs, baselines, budget=2 ** 7, players=players, random_state=0)
    assert only.intra_a is None and only.intra_b is None
    assert not torch.allclose(only.first_a, terms.first_a)  # the first-order terms do change

    # The same values as shapiq's InteractionValues, players = side a's positions, then side b's
    values = terms.to_shapiq(0)
    assert values.index == "FBII" and values.n_players == sum(positions) and values.estimation_budget == 2 ** (n_a + len(players_b))
    check(values.baseline_value, fbii[()])
    position = players_a + [positions[0] + q for q in players_b]
    for key, expected in fbii.dict_values.items():
        check(values[tuple(position[i] for i in key)], expected)
    assert len(values.values) == len(fbii.values)


class TwoAdditive(nn.Module):
    """``[b + sum_s W^T z[s], (sum_s c^T z[s])^2, kappa]`` (quadratic slot first) or
    ``[..., kappa, (...)^2]``: with the other side's encoder, the dot product is
    intercept + first-order + cross pairs + intra pairs and nothing else."""

    def __init__(self, hidden: int, dim: int, quadratic_first: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(hidden, dim, dtype=torch.float64))
        self.bias = nn.Parameter(torch.randn(dim, dtype=torch.float64))
        self.c = nn.Parameter(torch.randn(hidden, dtype=torch.float64))
        self.kappa = nn.Parameter(torch.randn((), dtype=torch.float64))
        self.quadratic_first = quadratic_first

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        linear = z.sum(1) @ self.weight + self.bias
        quadratic = (z @ self.c).sum(1) ** 2
        constant = self.kappa.expand_as(quadratic)
        extra = (quadratic, constant) if self.quadratic_first else (constant, quadratic)
        return torch.cat([linear, torch.stack(extra, 1)], 1)


def two_additive_setup(positions=(4, 5), hidden=3, dim=4, scale=1.5, seed=0):
    torch.manual_seed(seed)
    side_a, side_b = TwoAdditive(hidden, dim, True), TwoAdditive(hidden, dim, False)
    encode_a, encode_b = nn.Sequential(nn.Identity(), side_a), nn.Sequential(nn.Identity(), side_b)
    model = DualEncoder(encode_a, encode_b, normalize=False, scale=scale)  # zero baselines by default
    z_a = torch.randn(2, positions[0], hidden, dtype=torch.float64)
    z_b = torch.randn(2, positions[1], hidden, dtype=torch.float64)
    with torch.no_grad():
        u, v = z_a @ side_a.weight, z_b @ side_b.weight  # (batch, positions, dim)
        c, d = z_a @ side_a.c, z_b @ side_b.c  # (batch, positions)
        u0, v0 = side_a.bias, side_b.bias
        truth = dict(
            intercept=scale * (u0 @ v0).expand(2),
            first_a=scale * (u @ v0 + side_b.kappa * c**2),
            first_b=scale * (v @ u0 + side_a.kappa * d**2),
            cross=scale * u @ v.transpose(1, 2),
            intra_a=scale * 2 * side_b.kappa * (c.unsqueeze(2) * c.unsqueeze(1)) * (1 - torch.eye(positions[0])),
            intra_b=scale * 2 * side_a.kappa * (d.unsqueeze(2) * d.unsqueeze(1)) * (1 - torch.eye(positions[1])),
        )
    return model, (encode_a[0], encode_b[0]), (z_a, z_b), truth


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_recovers_a_two_additive_game_for_every_p_with_sampling(p):
    model, layer, inputs, truth = two_additive_setup()
    method = WeightedBanzhafInteractions(model, layer, p=p)
    budget = 300  # 14 x 21 coalitions of the 16 x 32 there are
    terms = method.attribute_terms(inputs, budget=budget, intra_modal=True, random_state=0)
    for name, expected in truth.items():
        torch.testing.assert_close(getattr(terms, name), expected, atol=1e-8, rtol=1e-8, msg=name)
    assert terms.settings["p"] == p
    # cross pairs are exact without the intra-modal terms too (misspecified model)
    cross = method.attribute(inputs, budget=budget, random_state=0)
    torch.testing.assert_close(cross, truth["cross"], atol=1e-8, rtol=1e-8)


def test_budget_is_the_number_of_game_values(monkeypatch):
    model, layer, inputs, _ = two_additive_setup()
    calls = []
    import captum_bilinear.games as module

    original = module.masked_embeddings

    def counting(side, activation, reference, keep, internal_batch_size=None):
        calls.append(keep.shape[0])
        return original(side, activation, reference, keep, internal_batch_size)

    monkeypatch.setattr(module, "masked_embeddings", counting)
    WeightedBanzhafInteractions(model, layer).attribute((inputs[0][:1], inputs[1][:1]), budget=300, random_state=0)
    rows_a, rows_b = calls
    assert rows_a * rows_b <= 300 and rows_a >= 5 and rows_b >= 6


def test_same_seed_same_result_other_seed_other_result(clip, pixels):
    method = WeightedBanzhafInteractions(clip, clip_layers(clip))
    ids = caption(320, 1125)
    first = method.attribute((ids, pixels), budget=400, random_state=3)
    again = method.attribute((ids, pixels), budget=400, random_state=3)
    other = method.attribute((ids, pixels), budget=400, random_state=4)
    assert first.shape == (1, 4, 17)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    assert torch.isfinite(first).all()


def test_model_state_restored(pixels):
    model = make_clip()
    model.train()
    WeightedBanzhafInteractions(model, clip_layers(model)).attribute((caption(320), pixels), budget=200, random_state=0)
    assert model.training and model.vision_model.encoder.layers[0].training
    assert hooks_of(model) == 0


@pytest.mark.parametrize("p, error", [(0.0, ValueError), (1.0, ValueError), (-0.5, ValueError), ("0.5", TypeError), (True, TypeError)])
def test_bad_p(clip, p, error):
    with pytest.raises(error, match=r"^p: expected a (real number|probability in the open interval)"):
        WeightedBanzhafInteractions(clip, clip_layers(clip), p=p)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(budget=50), ValueError,
         r"budget: 50 game values cannot identify the intercept, first-order, cross-modal pair terms of 4 x 17 players: "
         r"side a needs at least 5 coalitions and side b at least 18 .* >= 90 = 5 x 18"),
        (dict(budget=400, intra_modal=True), ValueError, r"budget: 400 .* intra-modal .* >= 1694 = 11 x 154"),
        (dict(budget=0), ValueError, r"budget: expected an int >= 1"),
        (dict(budget=100.0), TypeError, r"budget: expected an int"),
        (dict(intra_modal=1), TypeError, r"intra_modal: expected a bool"),
        (dict(players=[0, 1, 2]), TypeError, r"players: expected None or a pair"),
        (dict(players=([0, 7], None)), ValueError, r"players\[0\]: position 7 is out of range for a layer with 4 positions"),
        (dict(players=(None, [1, 1])), ValueError, r"players\[1\]: the positions \[1, 1\] contain duplicates"),
        (dict(players=([], None)), ValueError, r"players\[0\]: select at least one player position"),
        (dict(players=(torch.tensor([0.0, 1.0]), None)), TypeError, r"players\[0\]: expected a 1-D integer Tensor"),
        (dict(players=(torch.ones(3, dtype=torch.bool), None)), ValueError, r"players\[0\]: a bool mask must have one entry per position \(4\)"),
        (dict(players=("ab", None)), TypeError, r"players\[0\]: expected None, a sequence"),
        (dict(players=([0.5], None)), TypeError, r"players\[0\]: expected int position indices"),
        (dict(random_state=-1), TypeError, r"random_state"),
        (dict(internal_batch_size=0), ValueError, r"internal_batch_size"),
    ],
)
def test_bad_arguments(clip, pixels, kwargs, error, message):
    method = WeightedBanzhafInteractions(clip, clip_layers(clip))
    with pytest.raises(error, match=message):
        method.attribute((caption(320, 1125), pixels), **kwargs)
    assert hooks_of(clip) == 0


def test_players_with_negative_indices_and_masks_agree(clip, pixels):
    method = WeightedBanzhafInteractions(clip, clip_layers(clip))
    ids = caption(320, 1125)
    by_index = method.attribute((ids, pixels), budget=300, players=([1, -2], range(1, 17)), random_state=0)
    mask = torch.tensor([False, True, True, False])
    by_mask = method.attribute((ids, pixels), budget=300, players=(mask, torch.arange(1, 17)), random_state=0)
    torch.testing.assert_close(by_index, by_mask)
    assert by_index[0, [0, 3]].abs().max() == 0 and by_index[0, :, 0].abs().max() == 0


def test_batch_with_attention_mask_matches_first_example_alone(clip, pixels):
    input_ids, attention_mask, pixel_values = padded_batch(pixels)
    method = WeightedBanzhafInteractions(clip, clip_layers(clip), p=0.3)
    players = ([1, 2, 3], range(1, 17))
    both = method.attribute_terms((input_ids, pixel_values), additional_forward_args=((attention_mask,), None),
                                  budget=300, players=players, random_state=0)
    first = method.attribute_terms((input_ids[:1], pixel_values[:1]), additional_forward_args=((attention_mask[:1],), None),
                                   budget=300, players=players, random_state=0)
    assert both.cross.shape == (2, 5, 17) and both.intercept.shape == (2,) and both.first_b.shape == (2, 17)
    torch.testing.assert_close(both.cross[:1], first.cross)
    torch.testing.assert_close(both.intercept[:1], first.intercept)


def test_each_example_as_if_alone_and_padding_never_a_player(clip, pixels):
    """Example 1 of a batch equals its own run with the same random_state, and a padded
    position (attention mask 0) has zero terms although players=None selects it."""
    input_ids, attention_mask, pixel_values = padded_batch(pixels)
    method = WeightedBanzhafInteractions(clip, clip_layers(clip))
    both = method.attribute_terms((input_ids, pixel_values), additional_forward_args=((attention_mask,), None),
                                  budget=300, random_state=5)
    second = method.attribute_terms((input_ids[1:], pixel_values[1:]),
                                    additional_forward_args=((attention_mask[1:],), None), budget=300, random_state=5)
    torch.testing.assert_close(both.cross[1:], second.cross)
    torch.testing.assert_close(both.first_a[1:], second.first_a)
    assert both.players_a[0].tolist() == [True, True, True, True, False] and both.players_a[1].all()
    assert both.cross[0, 4].abs().max() == 0 and both.first_a[0, 4] == 0
    assert both.cross[0, :4].abs().max() > 0
    generator = torch.Generator().manual_seed(5)  # a generator: every example from its current state
    from_generator = method.attribute((input_ids, pixel_values), additional_forward_args=((attention_mask,), None),
                                      budget=300, random_state=generator)
    torch.testing.assert_close(from_generator, both.cross)


def test_default_budget_identifies_long_captions(clip, pixels):
    ids = torch.cat([caption(*([320] * 30))], 1)
    terms = WeightedBanzhafInteractions(clip, clip_layers(clip)).attribute_terms((ids, pixels), random_state=0)
    players_a, players_b = ids.shape[1], 17
    assert terms.settings["samples"][0] <= max(2**12, (players_a + 1) * (players_b + 1))
    assert terms.settings["samples"][0] >= (players_a + 1) * (players_b + 1)


def test_a_game_of_your_own_equals_the_model_path():
    """attribute_game on the layer-masking game gives what attribute_terms gives."""
    from captum_bilinear.games import LayerMaskingGame

    model, layer, inputs, baselines = nonlinear_setup((3, 4))
    method = WeightedBanzhafInteractions(model, layer, p=0.5)
    terms = method.attribute_terms(inputs, baselines, budget=2 ** 7, random_state=0)
    (pair,) = list(method._layer_pairs(*method._prepare(inputs, baselines, None), False))
    game = LayerMaskingGame(pair.side_a, pair.input_a, pair.reference_a, pair.side_b, pair.input_b,
                            pair.reference_b, torch.arange(3), torch.arange(4), model.scale)
    from_game = WeightedBanzhafInteractions.attribute_game(game, p=0.5, budget=2 ** 7, random_state=0)
    torch.testing.assert_close(from_game.cross, terms.cross.double(), atol=1e-12, rtol=0)
    torch.testing.assert_close(from_game.first_a, terms.first_a.double(), atol=1e-12, rtol=0)

