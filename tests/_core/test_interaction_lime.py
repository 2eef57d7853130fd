"""InteractionLIME against a closed form: a dual encoder whose masked similarity is exactly
bilinear in the kept positions, so the fitted matrix must be the true one."""


import pytest
import torch
from torch import nn
from conftest import caption, clip_layers, make_clip, padded_batch

from captum_bilinear import DualEncoder
from captum_bilinear._core.interaction_lime import InteractionLIME


class SumLinear(nn.Module):
    """``g(z) = sum_s W^T z[s]``: linear in each position's activation."""

    def __init__(self, hidden: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(hidden, dim, dtype=torch.float64))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.sum(1) @ self.weight


def bilinear_setup(scale=2.0, positions=(3, 5), hidden=4, dim=6, batch=2, seed=0):
    """Layer = the first module (an Identity), reference activation zero (the default zero
    baseline), no normalization: similarity(x_a, x_b) = sum x_a[s] x_b[p] A[s, p]."""
    torch.manual_seed(seed)
    encode_a = nn.Sequential(nn.Identity(), SumLinear(hidden, dim))
    encode_b = nn.Sequential(nn.Identity(), SumLinear(hidden, dim))
    model = DualEncoder(encode_a, encode_b, normalize=False, scale=scale)
    z_a = torch.randn(batch, positions[0], hidden, dtype=torch.float64)
    z_b = torch.randn(batch, positions[1], hidden, dtype=torch.float64)
    truth = scale * torch.einsum("bsd,bpd->bsp", z_a @ encode_a[1].weight, z_b @ encode_b[1].weight).detach()
    return model, (encode_a[0], encode_b[0]), (z_a, z_b), truth


def test_recovers_the_exact_bilinear_interactions_with_alpha_zero():
    model, layer, inputs, truth = bilinear_setup()
    W = InteractionLIME(model, layer).attribute(inputs, n_samples=60, alpha=0.0, random_state=0)
    assert W.shape == (2, 3, 5) and W.dtype == torch.float64
    assert truth.abs().max() > 0.5  # not vacuous
    torch.testing.assert_close(W, truth, atol=1e-4, rtol=0)


def test_ridge_shrinks_but_stays_close_and_sgd_roughly_agrees():
    model, layer, inputs, truth = bilinear_setup(batch=1)
    lime = InteractionLIME(model, layer)
    ridge = lime.attribute(inputs, n_samples=200, random_state=0)  # default alpha
    assert (ridge - truth).abs().max() < 0.05 * truth.abs().max()
    strong = lime.attribute(inputs, n_samples=200, alpha=100.0, random_state=0)
    assert strong.norm() < 0.9 * ridge.norm()
    sgd = lime.attribute(inputs, n_samples=200, solver="sgd", alpha=0.0, random_state=0,
                         solver_options=dict(epochs=300))
    corr = torch.corrcoef(torch.stack([sgd.flatten(), truth.flatten()]))[0, 1]
    assert corr > 0.9


def test_same_seed_same_result_other_seed_other_result(clip, pixels):
    lime = InteractionLIME(clip, clip_layers(clip))
    ids = caption(320, 1125)
    first = lime.attribute((ids, pixels), n_samples=120, random_state=3)
    again = lime.attribute((ids, pixels), n_samples=120, random_state=3)
    other = lime.attribute((ids, pixels), n_samples=120, random_state=4)
    assert first.shape == (1, 4, 17)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    assert torch.isfinite(first).all()


def test_degenerate_masked_embedding_gives_no_nan():
    """Masking every position gives a zero embedding (normalized to zero): the sample
    weights must stay finite."""
    torch.manual_seed(0)
    encode_a = nn.Sequential(nn.Identity(), SumLinear(4, 6))
    encode_b = nn.Sequential(nn.Identity(), SumLinear(4, 6))
    model = DualEncoder(encode_a, encode_b, normalize=True)
    inputs = (torch.randn(1, 1, 4, dtype=torch.float64), torch.randn(1, 2, 4, dtype=torch.float64))
    # one position on side a: about 30% of side a's masks drop everything
    W = InteractionLIME(model, (encode_a[0], encode_b[0])).attribute(inputs, n_samples=40, random_state=0)
    assert torch.isfinite(W).all()


def test_model_state_restored(pixels):
    model = make_clip()
    model.train()
    model.text_model.embeddings.token_embedding.weight.requires_grad_(False)
    InteractionLIME(model, clip_layers(model)).attribute((caption(320), pixels), n_samples=100, random_state=0)
    assert model.training and model.vision_model.encoder.layers[0].training
    assert not model.text_model.embeddings.token_embedding.weight.requires_grad
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(alpha=-1.0), ValueError, r"alpha: expected a finite number >= 0"),
        (dict(alpha=None), TypeError, r"alpha"),
        (dict(solver="adam"), ValueError, r"solver: expected one of \('ridge', 'sgd'\)"),
        (dict(n_samples=0), ValueError, r"n_samples: expected an int >= 1"),
        (dict(n_samples=10.5), TypeError, r"n_samples: expected an int"),
        (dict(random_state="seed"), TypeError, r"random_state"),
        (dict(internal_batch_size=0), ValueError, r"internal_batch_size"),
        (dict(solver_options=dict(lr=0.1)), ValueError, r"solver_options: only solver='sgd'"),
        (dict(solver="sgd", solver_options=dict(steps=3)), ValueError, r"solver_options: unknown option"),
        (dict(n_samples=50), ValueError, r"n_samples: 50 masked pairs cannot identify a 4 x 17 .* need n_samples >= 90"),
    ],
)
def test_bad_arguments(clip, pixels, kwargs, error, message):
    lime = InteractionLIME(clip, clip_layers(clip))
    with pytest.raises(error, match=message):
        lime.attribute((caption(320, 1125), pixels), **kwargs)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in clip.modules())


def test_batch_with_attention_mask_matches_first_example_alone(clip, pixels):
    input_ids, attention_mask, pixel_values = padded_batch(pixels)
    lime = InteractionLIME(clip, clip_layers(clip))
    extra = ((attention_mask,), None)
    both = lime.attribute((input_ids, pixel_values), additional_forward_args=extra, n_samples=150, random_state=0)
    first = lime.attribute((input_ids[:1], pixel_values[:1]), additional_forward_args=((attention_mask[:1],), None),
                           n_samples=150, random_state=0)
    assert both.shape == (2, 5, 17)
    torch.testing.assert_close(both[:1], first)
    assert both[0, 4].abs().max() == 0  # padding is never a player


@pytest.mark.parametrize("p, error", [(1.0, ValueError), (0, ValueError), ("0.5", TypeError)])
def test_bad_p(clip, p, error):
    with pytest.raises(error, match=r"^p: expected a"):
        InteractionLIME(clip, clip_layers(clip), p=p)


def test_keep_prob_is_the_deprecated_name_of_p(clip, pixels):
    inputs = (caption(320, 1125), pixels)
    with pytest.warns(DeprecationWarning, match="keep_prob"):
        old = InteractionLIME(clip, clip_layers(clip)).attribute(inputs, n_samples=120, keep_prob=0.6, random_state=0)
    new = InteractionLIME(clip, clip_layers(clip), p=0.6).attribute(inputs, n_samples=120, random_state=0)
    torch.testing.assert_close(old, new)


def test_each_example_as_if_alone(clip, pixels):
    """Example 1 of a batch equals its own run with the same random_state."""
    input_ids = torch.cat([caption(320, 1125, 539), caption(1125, 320, 539)])
    pixel_values = torch.cat([pixels, -pixels])
    lime = InteractionLIME(clip, clip_layers(clip))
    both = lime.attribute_terms((input_ids, pixel_values), n_samples=150, random_state=2)
    second = lime.attribute_terms((input_ids[1:], pixel_values[1:]), n_samples=150, random_state=2)
    torch.testing.assert_close(both.cross[1:], second.cross)
    torch.testing.assert_close(both.intercept[1:], second.intercept)
    assert both.method == "InteractionLIME" and not both.has_first_order and both.settings["p"] == 0.7


def test_default_samples_identify_the_surrogate():
    model, layer, inputs, truth = bilinear_setup(positions=(30, 40), batch=1)
    terms = InteractionLIME(model, layer).attribute_terms(inputs, alpha=0.0, random_state=0)
    assert terms.settings["samples"][0] >= 31 * 41
    torch.testing.assert_close(terms.cross, truth, atol=1e-4, rtol=0)


def test_a_game_of_your_own_equals_the_model_path():
    from captum_bilinear.games import LayerMaskingGame

    model, layer, inputs, truth = bilinear_setup(batch=1)
    lime = InteractionLIME(model, layer)
    terms = lime.attribute_terms(inputs, n_samples=60, random_state=0)
    (pair,) = list(lime._layer_pairs(*lime._prepare(inputs, None, None), False))
    game = LayerMaskingGame(pair.side_a, pair.input_a, pair.reference_a, pair.side_b, pair.input_b,
                            pair.reference_b, torch.arange(3), torch.arange(5), model.scale)
    from_game = InteractionLIME.attribute_game(game, n_samples=60, random_state=0)
    torch.testing.assert_close(from_game.cross, terms.cross, atol=1e-12, rtol=0)

