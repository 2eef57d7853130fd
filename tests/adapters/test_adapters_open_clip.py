"""open_clip models taken as they are: the four-term identity against open_clip's own
``encode_text`` / ``encode_image`` (random weights, ``pretrained=None``), default
references, padding after the end-of-text token, argument errors, the attention
fast-path switch (off inside a call, restored after it, safe across threads), and
ResNet image towers (a stage's feature map as positions)."""

import threading

import pytest
import torch
from optional_packages import import_optional

from captum_bilinear import (
    BilinearIntegratedInteractions,
    InteractionCAM,
    TokenPatchSimilarity,
    WeightedBanzhafInteractions,
    as_dual_encoder,
)
from captum_bilinear.selection import feature_map_grid, span_image_map
from captum_bilinear.references import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD

open_clip = import_optional("open_clip")

SOT, EOT = 49406, 49407


def make_open_clip(seed=0, **text):
    """A small ViT-B-32-shaped open_clip CLIP with random weights: 17 image positions
    (CLS + 4x4 patches) <= embedding dim 32, so the image side runs in forward mode,
    through nn.MultiheadAttention."""
    torch.manual_seed(seed)
    return open_clip.create_model(
        "ViT-B-32", pretrained=None, embed_dim=32,
        vision_cfg=dict(image_size=32, patch_size=8, width=32, layers=3, head_width=16),
        text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=3, **text),
    ).double().eval()


def layers(model, index=-2):
    return model.transformer.resblocks[index], model.visual.transformer.resblocks[index]


@pytest.fixture(scope="module")
def model():
    return make_open_clip()


@pytest.fixture(scope="module")
def tokens():
    return open_clip.get_tokenizer("ViT-B-32")(["a dog on a sofa", "a red square"])


@pytest.fixture
def images():
    torch.manual_seed(1)
    return torch.randn(2, 3, 32, 32, dtype=torch.float64)


def similarity(model, text, images):
    """open_clip's own cosine: its normalized encode_text / encode_image."""
    with torch.no_grad():
        return (model.encode_text(text, normalize=True) * model.encode_image(images, normalize=True)).sum(-1)


def four_terms(model, text, images, reference_text, reference_images):
    return (similarity(model, text, images) - similarity(model, reference_text, images)
            - similarity(model, text, reference_images) + similarity(model, reference_text, reference_images))


def test_identity_against_open_clips_own_similarity(model, tokens, images):
    bii = BilinearIntegratedInteractions(model, layers(model))
    A, delta = bii.attribute((tokens, images), n_steps=16, return_convergence_delta=True)
    assert A.shape == (2, 77, 17)
    # open_clip's references, built here from its conventions: [SOT, 0..., EOT, 0...] and black pixels
    reference_text = tokens.clone()
    for row, end in enumerate(tokens.argmax(-1).tolist()):
        reference_text[row, 1:end] = 0
    mean = torch.tensor(CLIP_IMAGE_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_IMAGE_STD, dtype=torch.float64).view(1, 3, 1, 1)
    black = ((torch.zeros_like(images) - mean) / std)
    identity = four_terms(model, tokens, images, reference_text, black)
    torch.testing.assert_close(A.sum((1, 2)), identity, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(delta, A.sum((1, 2)) - identity, rtol=0, atol=1e-12)


def test_explicit_baselines_and_the_other_methods(model, tokens, images):
    reference_text = tokens.clone()
    reference_text[:, 1:4] = 0
    reference_images = torch.zeros_like(images)
    bii = BilinearIntegratedInteractions(model, layers(model, 0))
    A = bii.attribute((tokens, images), baselines=(reference_text, reference_images), n_steps=16)
    identity = four_terms(model, tokens, images, reference_text, reference_images)
    torch.testing.assert_close(A.sum((1, 2)), identity, rtol=1e-6, atol=1e-9)
    # InteractionCAM: Jacobians x inputs at zero references, one node; runs through the adapter
    cam = InteractionCAM(model, layers(model)).attribute((tokens, images))
    assert cam.shape == (2, 77, 17) and torch.isfinite(cam).all()


def test_padding_after_the_end_of_text_carries_no_input(model, tokens, images):
    bii = BilinearIntegratedInteractions(model, layers(model))
    A = bii.attribute((tokens, images), n_steps=8)
    ends = tokens.argmax(-1)
    for row, end in enumerate(ends.tolist()):
        # the causal mask keeps positions after EOT from the pooled token: exactly zero
        assert A[row, end + 1:].abs().max() == 0
        assert A[row, : end + 1].abs().max() > 0
    # so they are no players of the perturbation methods; the image has no padding
    dual = as_dual_encoder(model)
    assert dual.input_positions("a", (tokens,), ()).tolist() == [[p <= int(end) for p in range(77)] for end in ends]
    assert dual.input_positions("b", (images,), ()) is None


def test_eos_pooling_references_keep_the_eos(images):
    model = make_open_clip(seed=2, pool_type="eos", eos_id=EOT)
    text = open_clip.get_tokenizer("ViT-B-32")(["a dog"])
    (reference,) = as_dual_encoder(model).default_baselines_a((text,), ())
    assert reference[0, :4].tolist() == [SOT, 0, 0, EOT]
    A = BilinearIntegratedInteractions(model, layers(model)).attribute((text, images[:1]), n_steps=16)
    black = as_dual_encoder(model).default_baselines_b((images[:1],), ())[0]
    torch.testing.assert_close(A.sum((1, 2)), four_terms(model, text, images[:1], reference, black), rtol=1e-6, atol=1e-9)


def test_eos_pooling_without_an_eos_id_is_refused_by_name():
    model = make_open_clip(seed=2, pool_type="eos", eos_id=EOT)
    model.text_eos_id = None  # what first_positions_of would compare the tokens with
    with pytest.raises(TypeError, match="model: open_clip text_pool_type 'eos' pools at the end-of-text token"):
        as_dual_encoder(model)


def test_token_patch_similarity_heads_are_open_clips(model, tokens, images):
    # open_clip pools the text at its EOT token and the image at its class token, both
    # through the same heads: ITSM-O at (EOT, CLS) is open_clip's own cosine.
    itsm = TokenPatchSimilarity(model, layers(model), variant="output").attribute((tokens, images))
    assert itsm.shape == (2, 77, 17)
    ends = tokens.argmax(-1)
    torch.testing.assert_close(itsm[torch.arange(2), ends, 0], similarity(model, tokens, images), rtol=1e-9, atol=1e-12)


def test_mean_and_std_from_open_clips_preprocess(tokens, images):
    model = make_open_clip()
    preprocess = open_clip.image_transform(32, is_train=False, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    black = as_dual_encoder(model, processor=preprocess).default_baselines_b((images,), ())[0]
    assert torch.allclose(black, torch.full_like(images, -2.0))
    default = as_dual_encoder(model).default_baselines_b((images,), ())[0]
    assert torch.allclose(default[0, :, 0, 0], (-torch.tensor(CLIP_IMAGE_MEAN) / torch.tensor(CLIP_IMAGE_STD)).double())


def test_fast_path_is_off_inside_and_restored_after_success_and_failure(model, tokens, images):
    seen = []
    hook = model.visual.transformer.resblocks[-1].register_forward_hook(
        lambda *_: seen.append(torch.backends.mha.get_fastpath_enabled()))
    try:
        BilinearIntegratedInteractions(model, layers(model)).attribute((tokens[:1], images[:1]), n_steps=2)
        assert seen and not any(seen)
        assert torch.backends.mha.get_fastpath_enabled()
        broken = model.visual.ln_post
        forward = broken.forward
        broken.forward = lambda x: (_ for _ in ()).throw(RuntimeError("boom"))
        try:
            with pytest.raises(RuntimeError, match="boom"):
                BilinearIntegratedInteractions(model, layers(model)).attribute((tokens[:1], images[:1]), n_steps=2)
        finally:
            broken.forward = forward
        assert torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # a user's own setting is kept too
        BilinearIntegratedInteractions(model, layers(model)).attribute((tokens[:1], images[:1]), n_steps=2)
        assert not torch.backends.mha.get_fastpath_enabled()
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
        hook.remove()


def test_concurrent_calls_give_the_sequential_results(tokens, images):
    models = [make_open_clip(seed=3), make_open_clip(seed=4)]
    methods = [BilinearIntegratedInteractions(m, layers(m)) for m in models]
    sequential = [method.attribute((tokens, images), n_steps=8) for method in methods]
    results, errors = [None, None], []

    def run(index):
        try:
            for _ in range(3):
                results[index] = methods[index].attribute((tokens, images), n_steps=8)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for result, expected in zip(results, sequential):
        torch.testing.assert_close(result, expected, rtol=1e-9, atol=1e-12)
    assert torch.backends.mha.get_fastpath_enabled()


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda t, i: (t[:, :20], i), ValueError, r"inputs\[0\]: open_clip's CLIP text encoder takes exactly 77 tokens"),
        (lambda t, i: (torch.cat([t, t], 1), i), ValueError, r"inputs\[0\]: 154 tokens, more than the model's maximum of 77"),
        (lambda t, i: (t.masked_fill(t == 320, 60000), i), ValueError, r"inputs\[0\]: token id 60000 .* outside the model's vocabulary of 49408"),
        (lambda t, i: (t[0], i), ValueError, r"inputs\[0\]: expected input_ids of shape \(batch, length\), got one sequence"),
        (lambda t, i: (torch.roll(t, 3, dims=1), i), ValueError, r"inputs\[0\]: text row 0 starts with the padding id 0 \(left padding\?\)"),
        (lambda t, i: (t, i[..., :16, :16]), ValueError, r"inputs\[1\]: expected images of 32x32 pixels .* got 16x16"),
        (lambda t, i: (t, i[0]), ValueError, r"inputs\[1\]: .* got one image of shape \(3, 32, 32\)"),
    ],
)
def test_bad_inputs_name_the_argument(model, tokens, images, change, error, message):
    with pytest.raises(error, match=message):
        BilinearIntegratedInteractions(model, layers(model)).attribute(change(tokens, images), n_steps=2)


@pytest.mark.parametrize("extra, name", [((torch.ones(2, 77),), None), (None, (torch.ones(2, 77),))])
def test_no_attention_mask_on_either_side(model, tokens, images, extra, name):
    side = 0 if extra is not None else 1
    with pytest.raises(ValueError, match=rf"additional_forward_args\[{side}\]: open_clip's .* takes no additional"):
        BilinearIntegratedInteractions(model, layers(model)).attribute(
            (tokens, images), additional_forward_args=(extra, name), n_steps=2)


def test_baseline_moving_the_end_of_text_is_refused(model, tokens, images):
    reference = torch.zeros_like(tokens)
    reference[:, 0], reference[:, 2] = SOT, EOT
    with pytest.raises(ValueError, match=r"baselines\[0\]: the text baseline's end-of-text positions \[2, 2\] differ"):
        BilinearIntegratedInteractions(model, layers(model)).attribute((tokens, images), baselines=(reference, None))



def make_resnet_clip(seed=0):
    """A small RN50-shaped open_clip CLIP (ModifiedResNet image tower, one block per
    stage, attention pool) with random weights; 64x64 images give a 2x2 map at layer4
    and 4x4 at layer3."""
    torch.manual_seed(seed)
    return open_clip.create_model(
        "RN50", pretrained=None, embed_dim=32,
        vision_cfg=dict(image_size=64, layers=[1, 1, 1, 1], width=16, head_width=16),
        text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
    ).double().eval()


@pytest.fixture(scope="module")
def resnet():
    return make_resnet_clip()


@pytest.fixture
def resnet_images():
    return torch.randn(2, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(5))


# ResNet's ReLUs put kinks on the path: one stage lower, Gauss-Legendre needs more nodes
@pytest.mark.parametrize("stage, grid, n_steps", [("layer4", (2, 2), 32), ("layer3", (4, 4), 128)])
def test_resnet_stage_cells_and_the_identity_against_open_clips_own(resnet, tokens, resnet_images, stage, grid,
                                                                    n_steps):
    layer = getattr(resnet.visual, stage)
    assert feature_map_grid(resnet, layer, resnet_images) == grid
    bii = BilinearIntegratedInteractions(resnet, (resnet.transformer.resblocks[0], layer))
    A, delta = bii.attribute((tokens, resnet_images), n_steps=n_steps, return_convergence_delta=True)
    assert A.shape == (2, 77, grid[0] * grid[1])
    reference_text = tokens.clone()
    for row, end in enumerate(tokens.argmax(-1).tolist()):
        reference_text[row, 1:end] = 0
    black = as_dual_encoder(resnet).default_baselines_b((resnet_images,), ())[0]
    mean = torch.tensor(CLIP_IMAGE_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_IMAGE_STD, dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(black, ((0 - mean) / std).expand_as(resnet_images))
    identity = four_terms(resnet, tokens, resnet_images, reference_text, black)
    torch.testing.assert_close(bii.similarity_terms((tokens, resnet_images)).interaction, identity,
                               rtol=1e-9, atol=1e-12)
    assert float(((A.sum((1, 2)) - identity) / identity).abs().max()) < 1e-3
    torch.testing.assert_close(delta, A.sum((1, 2)) - identity, rtol=0, atol=1e-12)
    # padding after the end-of-text token is exactly zero; the map's cells are row-major
    for row, end in enumerate(tokens.argmax(-1).tolist()):
        assert A[row, end + 1:].abs().max() == 0
    assert span_image_map(A[0], (1, 3), grid, has_cls=False).shape == grid


def test_resnet_batch_is_single_and_fixlip_runs_on_the_same_players(resnet, tokens, resnet_images):
    layer_pair = (resnet.transformer.resblocks[0], resnet.visual.layer4)
    bii = BilinearIntegratedInteractions(resnet, layer_pair)
    A = bii.attribute((tokens, resnet_images), n_steps=8)
    single = bii.attribute((tokens[1:], resnet_images[1:]), n_steps=8)
    torch.testing.assert_close(A[1:], single, rtol=1e-9, atol=1e-12)
    W = WeightedBanzhafInteractions(resnet, layer_pair).attribute((tokens, resnet_images), budget=2048,
                                                                   random_state=0)
    assert W.shape == A.shape
    for row, end in enumerate(tokens.argmax(-1).tolist()):
        assert W[row, end + 1:].abs().max() == 0 and W[row, 1:end].abs().max() > 0


def test_a_layer_of_the_image_tower_is_refused_for_the_text_side(resnet, tokens, resnet_images):
    with pytest.raises(ValueError, match=r"layer\[0\]: this Sequential is a module of side b's encoder "
                                         r"\(ModifiedResNet\), not of side a's"):
        BilinearIntegratedInteractions(resnet, (resnet.visual.layer3, resnet.visual.layer4))


def test_the_readmes_open_clip_block_runs_as_written(capsys):
    """It used an undefined ``image`` and needed the hub (pretrained="openai")."""
    import os
    import re

    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")
    with open(readme, encoding="utf-8") as handle:
        (block,) = [b for b in re.findall(r"^```py\n(.*?)^```", handle.read(), flags=re.S | re.M) if "open_clip" in b]
    exec(compile(block, "README.md open_clip block", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip() == "torch.Size([1, 77, 50])"
