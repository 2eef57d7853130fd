"""Model-side masking: toy encoders with known outputs, and a small HF CLIP whose own
similarities on hand-masked inputs are the oracle."""

import pytest
import torch

from captum_bilinear import InteractionTerms
import torch.nn.functional as F
from conftest import BOS, EOS, PAD, caption, features, make_clip

from captum_bilinear.metrics import (
    PairMaskingGame,
    PatchMaskingScore,
    TokenMaskingScore,
    default_text_players,
    deletion_curve,
    p_faithfulness,
    patch_pixel_masks,
)


def test_patch_pixel_masks_each_patch_covers_its_pixels():
    keep = torch.tensor([[True, False, False, True]])
    masks = patch_pixel_masks(keep, (2, 2), (4, 6))
    expected = torch.tensor(
        [[1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(masks[0], expected)


def test_patch_masking_replaces_pixels_by_the_baseline():
    pixels = torch.arange(16.0).reshape(1, 1, 4, 4)
    baseline = torch.full((1, 1, 4, 4), -1.0)
    score = PatchMaskingScore(lambda px: px.flatten(1), torch.ones(16), pixels, (2, 2), baseline=baseline)
    images = score.masked_images(torch.tensor([[False, True, True, True]]))
    assert torch.equal(images[0, 0, :2, :2], torch.full((2, 2), -1.0))
    assert torch.equal(images[0, 0, 2:, :], pixels[0, 0, 2:, :])
    assert torch.equal(images[0, 0, :2, 2:], pixels[0, 0, :2, 2:])


def test_patch_masking_with_a_linear_dot_score_gives_a_closed_form_curve():
    # embed = sum of pixels per patch; dot with ones = sum of the kept pixels
    pixels = torch.ones(1, 1, 4, 4)
    pixels[..., :2, :2] = 4.0  # patch 0 sums to 16, the others to 4
    def embed(px):
        return F.avg_pool2d(px, 2).flatten(1) * 4

    score = PatchMaskingScore(embed, torch.ones(4), pixels, (2, 2), similarity="dot")
    result = deletion_curve(torch.tensor([9.0, 1.0, 1.0, 1.0]), score)
    assert result.scores.tolist() == [28.0, 12.0, 8.0, 4.0, 0.0]


def test_token_masking_keeps_bos_eos_and_other_positions():
    ids = torch.tensor([[BOS, 11, 12, 13, EOS, EOS, EOS]])  # padded with EOS after the caption
    score = TokenMaskingScore(lambda x: x.double(), torch.ones(7), ids, pad_token_id=PAD)
    assert score.players.tolist() == [1, 2, 3]
    masked = score.masked_ids(torch.tensor([[True, False, True], [False, False, False]]))
    assert masked.tolist() == [
        [BOS, 11, PAD, 13, EOS, EOS, EOS],
        [BOS, PAD, PAD, PAD, EOS, EOS, EOS],
    ]
    chosen = TokenMaskingScore(lambda x: x.double(), torch.ones(7), ids, pad_token_id=PAD, players=[3, 1])
    assert chosen.masked_ids(torch.tensor([[False, True]])).tolist() == [[BOS, 11, 12, PAD, EOS, EOS, EOS]]


def test_default_text_players():
    assert default_text_players(torch.tensor([[BOS, 5, 6, EOS]])).tolist() == [1, 2]


def test_masking_bad_inputs():
    pixels = torch.zeros(1, 3, 8, 8)
    def embed(px):
        return px.flatten(1)

    with pytest.raises(ValueError, match="baseline"):
        PatchMaskingScore(embed, torch.ones(192), pixels, (2, 2), baseline=torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="pixel_values"):
        PatchMaskingScore(embed, torch.ones(192), torch.zeros(2, 3, 8, 8), (2, 2))
    with pytest.raises(ValueError, match="text_embedding"):
        PatchMaskingScore(embed, torch.ones(2, 192), pixels, (2, 2))
    with pytest.raises(ValueError, match="similarity"):
        PatchMaskingScore(embed, torch.ones(192), pixels, (2, 2), similarity="l2")
    with pytest.raises(TypeError, match="embed_image"):
        PatchMaskingScore(None, torch.ones(192), pixels, (2, 2))
    score = PatchMaskingScore(embed, torch.ones(192), pixels, (2, 2))
    with pytest.raises(TypeError, match="keep_mask"):
        score(torch.ones(1, 4))
    with pytest.raises(ValueError, match="keep_mask"):
        score(torch.ones(1, 5, dtype=torch.bool))
    ids = torch.tensor([BOS, 5, EOS])
    with pytest.raises(ValueError, match="players"):
        TokenMaskingScore(embed, torch.ones(3), ids, PAD, players=[3])
    with pytest.raises(ValueError, match="players"):
        TokenMaskingScore(embed, torch.ones(3), torch.tensor([BOS, EOS]), PAD)  # nothing to mask
    with pytest.raises(ValueError, match="pad_token_id"):
        TokenMaskingScore(embed, torch.ones(3), ids, -1)
    with pytest.raises(ValueError, match="embed_text"):
        TokenMaskingScore(lambda x: x.double()[0], torch.ones(3), ids, PAD)(torch.ones(1, 1, dtype=torch.bool))


# ------------------------------------------------------------------------ a small HF CLIP


@pytest.fixture(scope="module")
def clip_setup():
    model = make_clip()
    torch.manual_seed(1)
    pixels = torch.randn(1, 3, 32, 32)  # 4x4 grid of 8x8 patches
    ids = caption(320, 1125, 539)

    def embed_text(input_ids):
        return model.get_text_features(input_ids=input_ids)  # BaseModelOutputWithPooling in 5.x

    def embed_image(pixel_values):
        return model.get_image_features(pixel_values=pixel_values)

    return model, pixels, ids, embed_text, embed_image


def hf_cosine(model, ids, pixels):
    with torch.no_grad():
        text = features(model.get_text_features(input_ids=ids))
        image = features(model.get_image_features(pixel_values=pixels))
    return F.cosine_similarity(text, image, dim=-1)


def test_patch_score_on_clip_matches_hand_masked_images(clip_setup):
    model, pixels, ids, embed_text, embed_image = clip_setup
    with torch.no_grad():
        text = features(embed_text(ids))
    score = PatchMaskingScore(embed_image, text, pixels, (4, 4), baseline=0.5)
    keep = torch.ones(2, 16, dtype=torch.bool)
    keep[1, 5] = False  # patch (row 1, col 1): pixels 8..15 x 8..15
    with torch.no_grad():
        values = score(keep)
    masked = pixels.clone()
    masked[..., 8:16, 8:16] = 0.5
    assert torch.allclose(values[0], hf_cosine(model, ids, pixels)[0], atol=1e-6)
    assert torch.allclose(values[1], hf_cosine(model, ids, masked)[0], atol=1e-6)


def test_token_score_on_clip_matches_hand_masked_caption(clip_setup):
    model, pixels, ids, embed_text, embed_image = clip_setup
    with torch.no_grad():
        image = features(embed_image(pixels))
    score = TokenMaskingScore(embed_text, image, ids, pad_token_id=PAD, scale=2.0)
    with torch.no_grad():
        values = score(torch.tensor([[True, True, True], [True, False, True]]))
    assert torch.allclose(values[0], 2 * hf_cosine(model, ids, pixels)[0], atol=1e-6)
    assert torch.allclose(values[1], 2 * hf_cosine(model, caption(320, PAD, 539), pixels)[0], atol=1e-6)


def test_pair_game_on_clip(clip_setup):
    model, pixels, ids, embed_text, embed_image = clip_setup
    game = PairMaskingGame(embed_text, embed_image, ids, pixels, PAD, (4, 4), baseline=0.0)
    assert (game.n_players_a, game.n_players) == (3, 19)
    coalitions = torch.zeros(2, 19, dtype=torch.bool)
    coalitions[0] = True
    coalitions[1, 0] = True  # only token 1 and patch 0
    coalitions[1, 3] = True
    with torch.no_grad():
        values = game(coalitions)
    only = torch.zeros_like(pixels)
    only[..., :8, :8] = pixels[..., :8, :8]
    assert torch.allclose(values[0], hf_cosine(model, ids, pixels)[0], atol=1e-6)
    assert torch.allclose(values[1], hf_cosine(model, caption(320, PAD, PAD), only)[0], atol=1e-6)
    # it plugs into p_faithfulness with an explanation over the positions (BOS, EOS, CLS are no players)
    assert game.positions_a.tolist() == [1, 2, 3] and game.positions_b.tolist() == list(range(1, 17))
    zero = InteractionTerms(torch.zeros(1), torch.zeros(1, 5), torch.zeros(1, 17), torch.zeros(1, 5, 17))
    result = p_faithfulness(game, zero, n_coalitions=8, random_state=0)
    assert result.game_values.shape == (8,) and torch.equal(result.predictions, torch.zeros(8, dtype=torch.float64))
    # and all pairs of side coalitions at once are the joined coalitions' values
    pairs = game.cross_values(coalitions[:, :3], coalitions[:, 3:])
    joined = torch.cat([coalitions[[0, 0, 1, 1], :3], coalitions[[0, 1, 0, 1], 3:]], 1)
    with torch.no_grad():
        torch.testing.assert_close(pairs.reshape(-1), game(joined), atol=1e-6, rtol=0)
