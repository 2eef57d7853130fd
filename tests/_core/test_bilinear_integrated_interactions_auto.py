"""``n_steps="auto"`` and the whole decomposition of BilinearIntegratedInteractions, against
the HF model's own similarities and Captum's LayerIntegratedGradients."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerIntegratedGradients
from conftest import BOS, EOS, PAD, caption, clip_layers, features, make_clip

from captum_bilinear import BilinearIntegratedInteractions, ConditionedSimilarity, IntegratedJacobians
from captum_bilinear.references import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD


def cosine(model, input_ids, pixel_values):
    """The HF model's own cosine similarity (the oracle)."""
    with torch.no_grad():
        text = features(model.get_text_features(input_ids=input_ids))
        image = features(model.get_image_features(pixel_values=pixel_values))
    return F.cosine_similarity(text, image, dim=-1)


def black(pixel_values):
    mean = torch.tensor(CLIP_IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_IMAGE_STD).view(1, 3, 1, 1)
    return ((torch.zeros_like(pixel_values) - mean) / std).to(pixel_values.dtype)


@pytest.fixture(scope="module")
def setup():
    model = make_clip(dtype=torch.float64)
    input_ids = caption(320, 1125, 539, 320, 2368, 530)
    pixel_values = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    reference_ids = torch.tensor([[BOS, PAD, PAD, PAD, PAD, PAD, PAD, EOS]])
    reference_pixels = black(pixel_values)
    scores = {(a, b): float(cosine(model, ids, pix)) for a, ids in (("a", input_ids), ("r", reference_ids))
              for b, pix in (("b", pixel_values), ("r", reference_pixels))}
    return model, (input_ids, pixel_values), (reference_ids, reference_pixels), scores


@pytest.mark.parametrize("layer", ["embeddings", 0])
@pytest.mark.parametrize("tolerance", [1e-4, 1e-9])
def test_auto_meets_the_tolerance_of_the_independent_identity(setup, layer, tolerance):
    model, inputs, baselines, s = setup
    identity = s["a", "b"] - s["r", "b"] - s["a", "r"] + s["r", "r"]
    assert abs(identity) > 1e-3
    layers = ((model.text_model.embeddings, model.vision_model.embeddings) if layer == "embeddings"
              else clip_layers(model, layer))
    terms = BilinearIntegratedInteractions(model, layers).attribute_terms(inputs, baselines, n_steps="auto",
                                                                          tolerance=tolerance)
    # completeness against the HF model's own similarities, exactly checked per panel
    assert abs(float(terms.cross.sum()) - identity) <= tolerance * abs(identity)
    assert abs(float(terms.delta[0])) <= tolerance * abs(identity)
    # the map itself, against uniform Gauss-Legendre at 256 nodes (converged on this model)
    reference = BilinearIntegratedInteractions(model, layers).attribute(inputs, baselines, n_steps=256)
    map_error = float((terms.cross - reference).abs().max() / reference.abs().max())
    assert float(terms.error[0]) <= tolerance and map_error <= max(tolerance, 1e-12)


def test_terms_decompose_the_score_and_first_order_terms_are_captums_lig(setup):
    model, inputs, baselines, s = setup
    (input_ids, pixel_values), (reference_ids, reference_pixels) = inputs, baselines
    layers = (model.text_model.embeddings, model.vision_model.embeddings)
    terms = BilinearIntegratedInteractions(model, layers).attribute_terms(inputs, baselines, n_steps=64)
    assert terms.has_intercept and terms.has_first_order and terms.method == "BilinearIntegratedInteractions"
    assert terms.layers == ("text_model.embeddings", "vision_model.embeddings")
    assert float(terms.intercept[0]) == pytest.approx(s["r", "r"], abs=1e-10)
    assert float(terms.total()[0]) == pytest.approx(s["a", "b"], abs=1e-6)
    # first_a: Captum's LayerIntegratedGradients of f(., r_b) over the text layer, same nodes
    of_text = ConditionedSimilarity(model, reference_pixels, side="a")
    lig_a = LayerIntegratedGradients(of_text, layers[0]).attribute(input_ids, baselines=reference_ids, n_steps=64)
    torch.testing.assert_close(terms.first_a, lig_a.sum(-1), rtol=1e-6, atol=1e-9)
    of_image = ConditionedSimilarity(model, reference_ids, side="b")
    lig_b = LayerIntegratedGradients(of_image, layers[1]).attribute(pixel_values, baselines=reference_pixels,
                                                                    n_steps=64)
    torch.testing.assert_close(terms.first_b, lig_b.sum(-1), rtol=1e-6, atol=1e-9)
    # attribute returns the terms' cross, and its delta
    A, delta = BilinearIntegratedInteractions(model, layers).attribute(inputs, baselines, n_steps=64,
                                                                       return_convergence_delta=True)
    torch.testing.assert_close(A, terms.cross)
    torch.testing.assert_close(delta, terms.delta)


def test_max_steps_reached_warns_with_the_error(setup):
    model, inputs, baselines, _ = setup
    method = BilinearIntegratedInteractions(model, (model.text_model.embeddings, model.vision_model.embeddings))
    with pytest.warns(UserWarning, match="max_steps=33 reached with estimated relative error"):
        terms = method.attribute_terms(inputs, baselines, n_steps="auto", tolerance=1e-14, max_steps=33)
    assert float(terms.error[0]) > 1e-14 and int(terms.n_steps[0]) == 33


@pytest.mark.parametrize("options, match", [
    (dict(n_steps="auto", tolerance=0), "tolerance: expected a relative error"),
    (dict(n_steps="auto", tolerance=1.5), "tolerance: expected a relative error"),
    (dict(n_steps="auto", tolerance="small"), "tolerance: expected a relative error"),
    (dict(n_steps="auto", max_steps=8), "max_steps: expected an int >= 33"),
    (dict(n_steps="auto", method="riemann_left"), "method: n_steps='auto' refines"),
    (dict(n_steps="many"), "n_steps"),
])
def test_bad_auto_arguments_are_refused_before_work(setup, options, match):
    model, inputs, baselines, _ = setup
    method = BilinearIntegratedInteractions(model, clip_layers(model, 0))
    with pytest.raises((ValueError, TypeError), match=match):
        method.attribute(inputs, baselines, **options)


def test_auto_needs_multiply_by_inputs(setup):
    model, inputs, baselines, _ = setup
    method = BilinearIntegratedInteractions(model, clip_layers(model, 0), multiply_by_inputs=False)
    with pytest.raises(ValueError, match="multiply_by_inputs=True"):
        method.attribute(inputs, baselines, n_steps="auto")


def test_integrated_jacobians_auto_against_captum():
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    x = torch.randn(2, 4, dtype=torch.float64) * 4  # rough enough to need panels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto, delta = IntegratedJacobians(encoder, encoder[0]).attribute(x, n_steps="auto", tolerance=1e-10,
                                                                         return_convergence_delta=True)
    with torch.no_grad():
        change = encoder(x) - encoder(torch.zeros_like(x))
    assert float((delta.norm(dim=1) / change.norm(dim=1)).max()) <= 1e-10
    for k in range(3):
        lig = LayerIntegratedGradients(encoder, encoder[0]).attribute(x, target=k, n_steps=400)
        torch.testing.assert_close(auto[:, k], lig, rtol=0, atol=1e-8)


def test_one_progress_bar_per_call_whose_total_grows_with_the_panels(setup, monkeypatch):
    """n_steps='auto' refines in rounds: one bar for the whole call (a batch of two, every
    round of both sides), its total raised as panels are added, closed once, full at the end."""
    import tqdm.std

    model, (input_ids, pixel_values), (reference_ids, reference_pixels), _ = setup
    bars, closes, totals = [], [], []
    original_init, original_close, original_refresh = tqdm.std.tqdm.__init__, tqdm.std.tqdm.close, tqdm.std.tqdm.refresh

    def init(self, *args, **kwargs):
        bars.append(self)
        original_init(self, *args, **kwargs)

    def close(self):
        if not self.disable:
            closes.append((self.n, self.total))
        original_close(self)

    def refresh(self, *args, **kwargs):
        totals.append(self.total)
        return original_refresh(self, *args, **kwargs)

    monkeypatch.setattr(tqdm.std.tqdm, "__init__", init)
    monkeypatch.setattr(tqdm.std.tqdm, "close", close)
    monkeypatch.setattr(tqdm.std.tqdm, "refresh", refresh)
    inputs = (input_ids.repeat(2, 1), torch.cat([pixel_values, -pixel_values]))
    baselines = (reference_ids.repeat(2, 1), reference_pixels.repeat(2, 1, 1, 1))
    bii = BilinearIntegratedInteractions(model, (model.text_model.embeddings, model.vision_model.embeddings))
    terms = bii.attribute_terms(inputs, baselines, n_steps="auto", tolerance=1e-9, show_progress=True)
    assert (terms.n_steps > 16).all()  # refined past the first panels
    assert len(bars) == 1, bars
    assert len(closes) == 1 and closes[0][0] == closes[0][1] > 0, closes
    grown = sorted(set(t for t in totals if t))
    assert len(grown) >= 4 and grown[-1] == closes[0][1]  # both sides, both examples, several rounds
