"""The games the perturbation methods explain, against hand-masked models, and FIxLIP on a
masking game of one's own against shapiq's exact Faith-Banzhaf index of the same game."""

import numpy as np
import pytest
import shapiq
import torch
from conftest import PAD, caption, features, make_clip
from torch import nn

from captum_bilinear import DualEncoder, WeightedBanzhafInteractions
from captum_bilinear.games import LayerMaskingGame, cross_values
from captum_bilinear.metrics import PairMaskingGame


class Mixing(nn.Module):
    def __init__(self, hidden: int = 4, dim: int = 5) -> None:
        super().__init__()
        self.mix = nn.Linear(hidden, hidden, dtype=torch.float64)
        self.out = nn.Linear(hidden, dim, dtype=torch.float64)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.mix(z)).mean(1))


def _mixing_pair(seed, positions_a, positions_b):
    """A two-layer dual encoder of ``Mixing`` layers, random float64 activations and
    references at its first layers, and FIxLIP's prepared layer pair of them."""
    torch.manual_seed(seed)
    encode_a, encode_b = nn.Sequential(nn.Identity(), Mixing()), nn.Sequential(nn.Identity(), Mixing())
    model = DualEncoder(encode_a, encode_b, scale=2.0)
    z_a, z_b = (torch.randn(1, n, 4, dtype=torch.float64) for n in (positions_a, positions_b))
    r_a, r_b = (torch.randn(1, n, 4, dtype=torch.float64) for n in (positions_a, positions_b))
    method = WeightedBanzhafInteractions(model, (encode_a[0], encode_b[0]))
    (pair,) = list(method._layer_pairs(*method._prepare((z_a, z_b), (r_a, r_b), None), False))
    return model, (z_a, z_b), (r_a, r_b), pair


def test_layer_masking_game_is_the_similarity_of_hand_masked_activations():
    model, (z_a, z_b), (r_a, r_b), pair = _mixing_pair(0, 3, 4)
    players_a, players_b = torch.tensor([0, 2]), torch.tensor([1, 2, 3])
    game = LayerMaskingGame(pair.side_a, pair.input_a, pair.reference_a, pair.side_b, pair.input_b, pair.reference_b,
                            players_a, players_b, model.scale)
    coalitions = torch.tensor([[True, False, True, False, True], [False, True, False, True, True]])
    keep_a = torch.ones(2, 3, dtype=torch.bool)
    keep_a[:, players_a] = coalitions[:, :2]
    keep_b = torch.ones(2, 4, dtype=torch.bool)
    keep_b[:, players_b] = coalitions[:, 2:]
    masked_a = torch.where(keep_a.unsqueeze(-1), z_a, r_a)
    masked_b = torch.where(keep_b.unsqueeze(-1), z_b, r_b)
    with torch.no_grad():
        expected = model(masked_a, masked_b)
        torch.testing.assert_close(game(coalitions), expected)
        pairs = game.cross_values(coalitions[:, :2], coalitions[:, 2:])
        torch.testing.assert_close(pairs.diagonal(), expected)
        torch.testing.assert_close(pairs[0, 1], model(masked_a[:1], masked_b[1:])[0])


def test_layer_masking_game_of_groups_masks_each_groups_positions_together():
    """Players that are groups (rows of ``groups_a`` / ``groups_b``; only some of them
    players): the similarity of activations masked by hand, group by group."""
    model, (z_a, z_b), (r_a, r_b), pair = _mixing_pair(1, 4, 5)
    groups_a = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0]], dtype=torch.bool)  # position 2 in no group
    groups_b = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 1]], dtype=torch.bool)
    game = LayerMaskingGame(pair.side_a, pair.input_a, pair.reference_a, pair.side_b, pair.input_b, pair.reference_b,
                            torch.tensor([0, 1]), torch.tensor([0, 2]), model.scale, groups_a=groups_a,
                            groups_b=groups_b)  # group 1 of side b is no player: always present
    assert (game.n_players_a, game.n_players_b) == (2, 2) and game.positions_b.tolist() == [0, 2]
    coalitions = torch.tensor([[True, False, False, True], [False, True, True, False], [True, True, True, True]])
    keep_a = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    keep_b = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        expected = model(torch.where(keep_a.unsqueeze(-1), z_a, r_a), torch.where(keep_b.unsqueeze(-1), z_b, r_b))
        torch.testing.assert_close(game(coalitions), expected)
    with pytest.raises(ValueError, match=r"groups_b: expected \(groups, 5\) membership"):
        LayerMaskingGame(pair.side_a, pair.input_a, pair.reference_a, pair.side_b, pair.input_b, pair.reference_b,
                         torch.tensor([0]), torch.tensor([0]), groups_b=torch.ones(1, 4, dtype=torch.bool))


def test_cross_values_without_a_fast_path_evaluates_every_joined_coalition():
    class Product:
        n_players_a, n_players_b, n_players = 1, 2, 3

        def __call__(self, coalitions):
            return coalitions.double()[:, 0] * (1 + coalitions.double()[:, 1:].sum(1))

    values = cross_values(Product(), torch.tensor([[True], [False]]), torch.tensor([[True, True], [False, True]]))
    assert values.tolist() == [[3.0, 2.0], [0.0, 0.0]]


def test_fixlip_on_a_masking_game_of_ones_own_equals_shapiqs_exact_index():
    """The metrics' input-level masking game of a tiny CLIP (2 caption players, 4 patches),
    explained by attribute_game with a budget covering every coalition."""
    model = make_clip(image_size=16)  # 2 x 2 patches; transformers 4.45 cannot interpolate positions
    torch.manual_seed(2)
    pixels = torch.randn(1, 3, 16, 16)
    ids = caption(320, 1125)

    def embed_text(input_ids):
        return features(model.get_text_features(input_ids=input_ids))

    def embed_image(pixel_values):
        return features(model.get_image_features(pixel_values=pixel_values))

    game = PairMaskingGame(embed_text, embed_image, ids, pixels, PAD, (2, 2))
    assert (game.n_players_a, game.n_players_b) == (2, 4)
    terms = WeightedBanzhafInteractions.attribute_game(game, p=0.5, budget=2 ** 6, intra_modal=True, random_state=0)

    def numpy_game(coalitions: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return game(torch.as_tensor(np.asarray(coalitions, dtype=bool))).numpy()

    exact = shapiq.ExactComputer(numpy_game, 6)("FBII", order=2)
    values = terms.to_shapiq(0)
    for key, expected in exact.dict_values.items():
        assert abs(values[key] - expected) < 1e-6, (key, values[key], expected)
    assert abs(exact[(0, 2)]) > 1e-4  # not vacuous
