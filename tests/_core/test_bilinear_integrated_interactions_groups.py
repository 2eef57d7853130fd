"""Groups of positions as players (``feature_mask``): against closed forms of linear
encoders, the ungrouped matrix summed over the groups with matrices built here, the HF
model's own similarities, and the passes the encoders actually run."""

import pytest
import torch
import torch.nn.functional as F
from conftest import caption, features, make_clip

from captum_bilinear import BilinearIntegratedInteractions, DualEncoder, IntegratedJacobians
from captum_bilinear.selection import box_token_map, box_weights, span_mask


class LinearEncoder(torch.nn.Module):
    """(batch, positions, d_in) -> layer (batch, positions, hidden) -> flatten -> (batch, D)."""

    def __init__(self, positions, d_in, hidden, embedding_dim):
        super().__init__()
        self.layer = torch.nn.Linear(d_in, hidden)
        self.head = torch.nn.Linear(positions * hidden, embedding_dim)

    def forward(self, x):
        return self.head(self.layer(x).flatten(1))


def one_hot(ids, groups):
    """``(groups, positions)``: 1 where position p has id g (-1: no group)."""
    matrix = torch.zeros(groups, len(ids), dtype=torch.float64)
    for position, group in enumerate(ids.tolist()):
        if group >= 0:
            matrix[group, position] = 1.0
    return matrix


def test_linear_encoders_closed_form_of_the_groups():
    """A grouped entry is the closed form's entries summed over the two groups."""
    torch.manual_seed(0)
    S, P, D = 4, 6, 3
    encoder_a, encoder_b = LinearEncoder(S, 5, 7, D).double(), LinearEncoder(P, 2, 3, D).double()
    model = DualEncoder(encoder_a, encoder_b, normalize=False, scale=1.5)
    a, b = torch.randn(1, S, 5, dtype=torch.float64), torch.randn(1, P, 2, dtype=torch.float64)
    ra, rb = torch.randn(1, S, 5, dtype=torch.float64), torch.randn(1, P, 2, dtype=torch.float64)
    mask_a, mask_b = torch.tensor([1, -1, 0, 1]), torch.tensor([0, 0, 2, 1, -1, 2])
    A = BilinearIntegratedInteractions(model, (encoder_a.layer, encoder_b.layer)).attribute(
        (a, b), baselines=(ra, rb), n_steps=3, feature_mask=(mask_a, mask_b))
    dza, dzb = (encoder_a.layer(a) - encoder_a.layer(ra))[0], (encoder_b.layer(b) - encoder_b.layer(rb))[0]
    T = (encoder_a.head.weight.view(D, S, 7) * dza).sum(-1)
    U = (encoder_b.head.weight.view(D, P, 3) * dzb).sum(-1)
    closed = 1.5 * T.T @ U
    expected = torch.stack([torch.stack([closed[mask_a == g][:, mask_b == h].sum() for h in range(3)])
                            for g in range(2)])
    assert A.shape == (1, 2, 3)
    torch.testing.assert_close(A[0], expected.detach(), rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def pair():
    model = make_clip(dtype=torch.float64)
    input_ids = caption(320, 1125, 539, 320, 2368, 530)  # 8 tokens
    pixel_values = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return model, torch.cat([input_ids, input_ids.flip(1)]), pixel_values


def bii_at(model, layer="embeddings"):
    layers = ((model.text_model.embeddings, model.vision_model.embeddings) if layer == "embeddings"
              else (model.text_model.encoder.layers[layer], model.vision_model.encoder.layers[layer]))
    return BilinearIntegratedInteractions(model, layers)


@pytest.mark.parametrize("layer", ["embeddings", 1])
def test_groups_are_the_full_matrix_summed_at_the_same_nodes(pair, layer):
    model, input_ids, pixel_values = pair
    bii = bii_at(model, layer)
    full, full_delta = bii.attribute((input_ids, pixel_values), n_steps=12, return_convergence_delta=True)
    # per example ids on side a (batch, positions); one mask for the batch on side b
    mask_a = torch.tensor([[0, 1, 1, 2, 2, 2, 0, 0], [2, 2, 0, 0, 1, 1, 1, 2]])
    mask_b = torch.arange(17) % 4
    grouped, delta = bii.attribute((input_ids, pixel_values), n_steps=12, feature_mask=(mask_a, mask_b),
                                   return_convergence_delta=True)
    assert grouped.shape == (2, 3, 4)
    for index in range(2):
        expected = one_hot(mask_a[index], 3) @ full[index] @ one_hot(mask_b, 4).T
        torch.testing.assert_close(grouped[index], expected, rtol=1e-9, atol=1e-12)
    # every position in a group: the identity and the delta are unchanged
    torch.testing.assert_close(delta, full_delta, rtol=1e-7, atol=1e-12)


def test_terms_are_grouped_and_still_add_up_to_the_models_own_similarity(pair):
    model, input_ids, pixel_values = pair
    bii = bii_at(model)
    mask_a = span_mask(8, [(1, 3), (4, 6)])  # two spans, the rest a third group
    terms = bii.attribute_terms((input_ids[:1], pixel_values[:1]), n_steps=24, feature_mask=(mask_a, None))
    full = bii.attribute_terms((input_ids[:1], pixel_values[:1]), n_steps=24)
    assert terms.cross.shape == (1, 3, 17) and terms.first_a.shape == (1, 3) and terms.settings["feature_mask"]
    torch.testing.assert_close(terms.first_a[0], one_hot(mask_a, 3) @ full.first_a[0], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(terms.first_b, full.first_b, rtol=1e-9, atol=1e-12)
    with torch.no_grad():  # the HF model's own cosine similarity (the oracle)
        text = features(model.get_text_features(input_ids=input_ids[:1]))
        image = features(model.get_image_features(pixel_values=pixel_values[:1]))
    # 1e-7: transformers 4.x's float64 CLIP reaches its own similarity only to 1.4e-8 here
    assert float(terms.total()[0] - terms.delta[0]) == pytest.approx(float(F.cosine_similarity(text, image)), abs=1e-7)


def test_left_out_positions_and_no_delta(pair):
    model, input_ids, pixel_values = pair
    bii = bii_at(model)
    full = bii.attribute((input_ids, pixel_values), n_steps=8)
    mask_a = torch.tensor([-1, 0, 0, 1, 1, -1, -1, -1])
    grouped = bii.attribute((input_ids, pixel_values), n_steps=8, feature_mask=(mask_a, None))
    torch.testing.assert_close(grouped, torch.einsum("gs,bsp->bgp", one_hot(mask_a, 2), full), rtol=1e-9, atol=1e-12)
    assert bii.attribute_terms((input_ids, pixel_values), n_steps=8, feature_mask=(mask_a, None)).delta is None
    with pytest.raises(ValueError, match=r"return_convergence_delta: feature_mask\[0\] leaves positions out"):
        bii.attribute((input_ids, pixel_values), n_steps=8, feature_mask=(mask_a, None), return_convergence_delta=True)


def test_box_weights_give_the_box_map(pair):
    """Float group weights: a box's patches weighted by their share inside it, the same
    caption map as :func:`box_token_map` of the full matrix."""
    model, input_ids, pixel_values = pair
    bii = bii_at(model, 1)
    box = (3.5, 6.0, 21.0, 17.25)
    full = bii.attribute((input_ids, pixel_values), n_steps=8)
    weights = box_weights([box, (0, 0, 32, 32)], (32, 32), (4, 4), has_cls=True)
    grouped = bii.attribute((input_ids, pixel_values), n_steps=8, feature_mask=(None, weights))
    assert grouped.shape == (2, 8, 2)
    torch.testing.assert_close(grouped[..., 0], box_token_map(full, box, (32, 32), (4, 4)), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grouped[..., 1], full[..., 1:].sum(-1), rtol=1e-9, atol=1e-12)


def test_auto_meets_the_tolerance_on_the_grouped_matrix(pair):
    model, input_ids, pixel_values = pair
    bii = bii_at(model)
    mask = (span_mask(8, [(1, 3), (4, 6)], rest=False), None)
    terms = bii.attribute_terms((input_ids[:1], pixel_values[:1]), n_steps="auto", tolerance=1e-6, feature_mask=mask)
    reference = bii.attribute((input_ids[:1], pixel_values[:1]), n_steps=256, feature_mask=mask)
    error = float((terms.cross - reference).abs().max() / reference.abs().max())
    assert terms.delta is None and float(terms.error[0]) <= 1e-6 and error <= 1e-6


class RowCounter:  # forward passes through the given modules (vmap's tangents are not rows here)
    """Counts the activations (rows) the layers above the attributed ones run on."""

    def __init__(self, modules):
        self.rows = 0
        self.handles = [m.register_forward_hook(self.count) for m in modules]

    def count(self, module, inputs, output):
        self.rows += (output[0] if isinstance(output, tuple) else output).shape[0]

    def close(self):
        for handle in self.handles:
            handle.remove()


def test_passes_per_node_follow_the_groups_of_the_first_side(pair, monkeypatch):
    """Per node one JVP per group of the side that goes first and one VJP per group (+ the
    first-order cotangent) on the other, not per position: the tangent and cotangent rows
    handed to the autodiff passes are counted."""
    import captum_bilinear._utils.bilinear as bilinear

    model, input_ids, pixel_values = pair
    bii = bii_at(model)
    counts = {"jvp": 0, "vjp": 0}
    jvps, vjps = bilinear.integrated_jvps, bilinear.integrated_vjps

    def counted_jvps(side, reference, delta, direction, alphas, *args, groups=None, **kwargs):
        counts["jvp"] += len(alphas) * (delta.shape[1] if groups is None else groups.shape[0])
        return jvps(side, reference, delta, direction, alphas, *args, groups=groups, **kwargs)

    def counted_vjps(side, reference, delta, direction, alphas, weights, cotangents, *args, **kwargs):
        counts["vjp"] += len(alphas) * cotangents.shape[0]
        return vjps(side, reference, delta, direction, alphas, weights, cotangents, *args, **kwargs)

    monkeypatch.setattr(bilinear, "integrated_jvps", counted_jvps)
    monkeypatch.setattr(bilinear, "integrated_vjps", counted_vjps)

    def rows(mask, terms=False):
        counts.update(jvp=0, vjp=0)
        run = bii.attribute_terms if terms else bii.attribute
        run((input_ids[:1], pixel_values[:1]), n_steps=16, feature_mask=mask)
        return dict(counts)

    assert rows(None) == {"jvp": 16 * 8, "vjp": 16 * 8}  # the caption goes first: 8 tokens
    # the terms' first-order values of the image side: one more cotangent
    assert rows(None, terms=True) == {"jvp": 16 * 8, "vjp": 16 * (8 + 1)}
    # three spans (and what they leave out, so that completeness is checked): 4 tangents, 3 cotangents
    assert rows((span_mask(8, [(1, 3), (3, 5), (5, 7)], rest=False), None)) == {"jvp": 16 * 4, "vjp": 16 * 3}
    # one box on the image: the image goes first with 2 tangents (box and rest), the caption has 1 cotangent
    box = box_weights((0, 0, 16, 16), (32, 32), (4, 4))
    assert rows((None, box)) == {"jvp": 16 * 2, "vjp": 16 * 1}


def test_integrated_jacobians_groups_are_the_positions_summed(pair):
    model, input_ids, pixel_values = pair
    from captum_bilinear import as_dual_encoder

    dual = as_dual_encoder(model)
    layer = model.vision_model.encoder.layers[0]
    ij = IntegratedJacobians(dual.embed_b, layer)
    full, full_delta = ij.attribute(pixel_values, n_steps=6, return_convergence_delta=True)
    mask = torch.arange(17) % 3
    grouped, delta = ij.attribute(pixel_values, n_steps=6, feature_mask=mask, return_convergence_delta=True)
    assert grouped.shape == (2, 16, 3)
    torch.testing.assert_close(grouped, full.sum(-1) @ one_hot(mask, 3).T, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(delta, full_delta, rtol=1e-7, atol=1e-12)
    with pytest.raises(ValueError, match="return_convergence_delta: feature_mask leaves positions out"):
        ij.attribute(pixel_values, n_steps=6, feature_mask=mask - 1, return_convergence_delta=True)


@pytest.mark.parametrize("mask, error, message", [
    ((torch.tensor([0, 1]), None, 3), TypeError, r"feature_mask: expected None or a pair"),
    (("ids", None), TypeError, r"feature_mask\[0\]: expected None or a Tensor"),
    ((torch.ones(8, dtype=torch.bool), None), TypeError, r"feature_mask\[0\]: expected integer group ids"),
    ((torch.tensor([0, -2, 0, 0, 0, 0, 0, 0]), None), ValueError, r"must be -1 \(left out\) or 0 \.\. G-1"),
    ((torch.full((8,), -1), None), ValueError, r"at least one position in a group"),
    ((torch.zeros(3, 8, dtype=torch.long), None), ValueError, r"group ids for a batch of 3, inputs of batch 2"),
    ((None, torch.zeros(5, dtype=torch.long)), ValueError, r"feature_mask\[1\]: a mask of 5 positions for a layer "
                                                           r"with 17 positions"),
])
def test_bad_masks_are_refused_before_the_attribution(pair, mask, error, message):
    model, input_ids, pixel_values = pair
    bii = bii_at(model)
    counter = RowCounter([model.text_model.encoder.layers[-1], model.vision_model.encoder.layers[-1]])
    try:
        with pytest.raises(error, match=message):
            bii.attribute((input_ids, pixel_values), n_steps=8, feature_mask=mask)
    finally:
        counter.close()
    # no path integral ran: at most the capture and endpoint passes of the first example (5 per side)
    assert counter.rows <= 10
