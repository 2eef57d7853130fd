"""Every wrapped HuggingFace family taken as its processor gives its inputs (small random
configs, nothing downloaded): the four-term identity against the model's own embeddings
with hand-written default references, interactions adding up to it at n_steps=32, one
column of A per position of the layer, a batch giving each example's own result,
padding (text tokens, SigLIP-2 patch slots) never a player and exactly zero, FIxLIP on
the same players, and a layer of the wrong tower refused before any pass."""

import pytest
import torch
from hf_families import FAMILIES, Family

from captum_bilinear import BilinearIntegratedInteractions, WeightedBanzhafInteractions, as_dual_encoder
from captum_bilinear.adapters.hf import layer_lists


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request) -> Family:
    return FAMILIES[request.param]()


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family64(request) -> Family:
    """The family in float64: the identity checks compare to 1e-4 relative what float32
    round-off alone would blur on identities of ~1e-4."""
    return FAMILIES[request.param]().double()


def layer_positions(family: Family, layer) -> int:
    """The positions of ``layer``'s output in the model's own forward pass: tokens /
    patch slots of a (batch, positions, hidden) output, H * W of a (batch, C, H, W) map."""
    shapes = []
    handle = layer.register_forward_hook(lambda module, args, out: shapes.append(
        (out[0] if isinstance(out, tuple) else out).shape))
    try:
        with torch.no_grad():
            family.embed_other(family.other, family.extra_b) if family.similarity is None else family.cosine(
                family.input_ids, family.other)
    finally:
        handle.remove()
    shape = shapes[0]
    return shape[2] * shape[3] if len(shape) == 4 else shape[1]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs().clamp_min(1e-12)).max())


def test_the_four_terms_are_the_models_own(family64):
    """Each similarity of the identity, with the default references, is the model's own
    cosine of the hand-made reference inputs, and so is the identity (1e-4 relative)."""
    family = family64
    bii = BilinearIntegratedInteractions(family.model, family.layers())
    terms = bii.similarity_terms(family.inputs, additional_forward_args=family.extra)
    own = family.cosine
    for got, expected in ((terms.similarity, own(family.input_ids, family.other)),
                          (terms.reference_a, own(family.reference_ids, family.other)),
                          (terms.reference_b, own(family.input_ids, family.reference_other)),
                          (terms.reference_both, own(family.reference_ids, family.reference_other))):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=0)
    assert relative(terms.interaction, family.identity()) < 1e-4


def test_interactions_add_up_to_the_identity_with_one_column_per_position(family64):
    family = family64
    layers = family.layers()
    bii = BilinearIntegratedInteractions(family.model, layers)
    A, delta = bii.attribute(family.inputs, additional_forward_args=family.extra, n_steps=32,
                             return_convergence_delta=True)
    assert A.shape == (2, family.input_ids.shape[1], layer_positions(family, layers[1]))
    identity = family.identity()
    assert relative(A.sum((1, 2)), identity) < 1e-3, (A.sum((1, 2)), identity)
    torch.testing.assert_close(delta, A.sum((1, 2)) - identity, rtol=1e-6, atol=1e-6 * float(identity.abs().max()))


def test_padding_is_never_a_player_and_its_interactions_are_zero(family):
    bii = BilinearIntegratedInteractions(family.model, family.layers())
    A = bii.attribute(family.inputs, additional_forward_args=family.extra, n_steps=8)
    fixlip = WeightedBanzhafInteractions(family.model, family.layers())
    W = fixlip.attribute(family.inputs, additional_forward_args=family.extra, budget=4096, random_state=0)
    assert W.shape == A.shape
    if family.attention_mask is not None:
        padded = family.attention_mask == 0
        assert bool(padded.any())
        assert torch.equal(A[padded], torch.zeros_like(A[padded]))
        assert torch.equal(W[padded], torch.zeros_like(W[padded]))
    if family.name == "SigLIP-2":
        slots = family.extra_b[0] == 0  # (batch, slots): the second image's 6 padding slots
        assert int(slots.sum()) == 6
        assert torch.equal(A.transpose(1, 2)[slots], torch.zeros_like(A.transpose(1, 2)[slots]))
        assert torch.equal(W.transpose(1, 2)[slots], torch.zeros_like(W.transpose(1, 2)[slots]))
    # FIxLIP's players are the other positions: it fitted interactions there
    players = torch.ones_like(A, dtype=torch.bool)
    if family.attention_mask is not None:
        players &= (family.attention_mask != 0)[:, :, None]
    if family.name == "SigLIP-2":
        players &= (family.extra_b[0] != 0)[:, None, :]
    assert bool((W[players] != 0).float().mean() > 0.5)


def test_a_batch_gives_each_examples_own_result(family):
    bii = BilinearIntegratedInteractions(family.model, family.layers())
    A = bii.attribute(family.inputs, additional_forward_args=family.extra, n_steps=8)
    for index in range(2):
        ids = family.input_ids[index:index + 1]
        extra_a = None
        if family.attention_mask is not None:
            length = int(family.attention_mask[index].sum())
            ids = ids[:, :length]  # the caption alone, without its padding
        extra_b = tuple(x[index:index + 1] for x in family.extra_b) or None
        single = bii.attribute((ids, family.other[index:index + 1]), additional_forward_args=(extra_a, extra_b),
                               n_steps=8)
        scale = float(single.abs().max())
        torch.testing.assert_close(A[index, :ids.shape[1]], single[0], rtol=1e-3, atol=1e-4 * scale)


def test_a_layer_of_the_wrong_tower_is_refused_before_any_pass(family):
    calls = []
    handles = [module.register_forward_hook(lambda *_: calls.append(1)) for module in family.model.modules()]
    try:
        for layers, index in (((family.other_layers[0], family.other_layers[0]), 0),
                              ((family.text_layers[0], family.text_layers[0]), 1),
                              ((family.other_layers[0], family.text_layers[0]), 0)):
            with pytest.raises(ValueError, match=rf"layer\[{index}\]: this \w+ is a module of side [ab]'s encoder "
                                                 r"\(\w+\), not of side [ab]'s \(\w+\)"):
                BilinearIntegratedInteractions(family.model, layers).attribute(
                    family.inputs, additional_forward_args=family.extra, n_steps=2)
    finally:
        for handle in handles:
            handle.remove()
    assert not calls


def test_the_adapter_wraps_what_the_model_has(family):
    dual = as_dual_encoder(family.model)
    assert dual.knows_its_modules and dual.normalize and dual.scale == 1.0
    with torch.no_grad():
        torch.testing.assert_close(dual(family.input_ids, family.other, *family.extra),
                                   family.cosine(family.input_ids, family.other), rtol=1e-5, atol=1e-6)


def test_layer_lists_are_the_towers_layers(family):
    text, other = layer_lists(family.model)
    assert text is family.text_layers and other is family.other_layers
