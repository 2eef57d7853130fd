"""BilinearIntegratedInteractions against independent oracles: the HF model's own
similarities, closed forms for linear encoders, and Captum's LayerIntegratedGradients."""

import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerIntegratedGradients
from conftest import BOS, EOS, PAD, caption, clip_layers, features, make_bert, make_clip, make_siglip

from captum_bilinear import BilinearIntegratedInteractions, DualEncoder
from captum_bilinear.references import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD

METHODS = ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]


def clip_similarity(model, input_ids, pixel_values, attention_mask=None):
    """Cosine similarity straight from the HF model (the oracle)."""
    text = features(model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))
    image = features(model.get_image_features(pixel_values=pixel_values))
    return F.cosine_similarity(text, image, dim=-1)


def black(pixel_values, mean=CLIP_IMAGE_MEAN, std=CLIP_IMAGE_STD):
    mean = torch.tensor(mean).view(1, 3, 1, 1)
    std = torch.tensor(std).view(1, 3, 1, 1)
    return ((torch.zeros_like(pixel_values) - mean) / std).to(pixel_values.dtype)


# ----------------------------------------------------------------- (a) completeness


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layer_index", [0, -2])
def test_clip_completeness_against_hf_similarities(dtype, layer_index, pixels):
    model = make_clip(dtype=dtype)
    input_ids = caption(320, 1125, 539, 320, 2368, 530)
    pixel_values = pixels.to(dtype)
    reference_ids = torch.tensor([[BOS, PAD, PAD, PAD, PAD, PAD, PAD, EOS]])
    reference_pixels = black(pixel_values)
    with torch.no_grad():
        identity = (
            clip_similarity(model, input_ids, pixel_values)
            - clip_similarity(model, reference_ids, pixel_values)
            - clip_similarity(model, input_ids, reference_pixels)
            + clip_similarity(model, reference_ids, reference_pixels)
        )
    bii = BilinearIntegratedInteractions(model, clip_layers(model, layer_index))
    A, delta = bii.attribute((input_ids, pixel_values), n_steps=16, return_convergence_delta=True)
    assert A.shape == (1, 8, 17)
    assert identity.abs().item() > 1e-3  # the check below is not vacuous
    assert abs(A.sum().item() - identity.item()) <= 1e-5 * abs(identity.item())
    assert abs(delta.item()) <= 1e-5 * abs(identity.item())


def test_siglip_completeness_against_hf_similarities(pixels):
    model = make_siglip()
    input_ids = torch.tensor([[5, 17, 33, 8, 98, 1, 1, 1]])
    reference_ids = torch.tensor([[1, 1, 1, 1, 98, 1, 1, 1]])
    reference_pixels = black(pixels, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

    def similarity(ids, px):
        text = features(model.get_text_features(input_ids=ids))
        image = features(model.get_image_features(pixel_values=px))
        return F.cosine_similarity(text, image, dim=-1)

    with torch.no_grad():
        identity = (
            similarity(input_ids, pixels)
            - similarity(reference_ids, pixels)
            - similarity(input_ids, reference_pixels)
            + similarity(reference_ids, reference_pixels)
        )
    layer = (model.text_model.encoder.layers[1], model.vision_model.encoder.layers[1])
    A, delta = BilinearIntegratedInteractions(model, layer).attribute(
        (input_ids, pixels), n_steps=16, return_convergence_delta=True
    )
    assert A.shape == (1, 8, 16)  # SigLIP has no CLS position
    assert identity.abs().item() > 1e-3
    assert abs(A.sum().item() - identity.item()) <= 1e-5 * abs(identity.item())


def test_similarity_terms_are_the_hf_similarities(clip, pixels):
    input_ids = caption(320, 1125, 539)
    reference_ids = torch.tensor([[BOS, PAD, PAD, PAD, EOS]])
    terms = BilinearIntegratedInteractions(clip, clip_layers(clip)).similarity_terms((input_ids, pixels))
    with torch.no_grad():
        expected = [
            clip_similarity(clip, input_ids, pixels),
            clip_similarity(clip, reference_ids, pixels),
            clip_similarity(clip, input_ids, black(pixels)),
            clip_similarity(clip, reference_ids, black(pixels)),
        ]
    for value, oracle in zip(terms, expected):
        torch.testing.assert_close(value, oracle, rtol=1e-5, atol=1e-6)


def test_convergence_delta_shrinks_with_n_steps(clip, pixels):
    bii = BilinearIntegratedInteractions(clip, clip_layers(clip))
    inputs = (caption(320, 1125, 539), pixels)
    errors = [bii.attribute(inputs, n_steps=n, return_convergence_delta=True)[1].abs().item() for n in (1, 2, 16)]
    assert errors[0] > errors[1] > errors[2]


# ------------------------------------------------------ (c) closed form, linear encoders


class LinearEncoder(torch.nn.Module):
    """(batch, positions, d_in) -> layer (batch, positions, hidden) -> flatten -> (batch, D)."""

    def __init__(self, positions, d_in, hidden, embedding_dim):
        super().__init__()
        self.layer = torch.nn.Linear(d_in, hidden)
        self.head = torch.nn.Linear(positions * hidden, embedding_dim)

    def forward(self, x):
        return self.head(self.layer(x).flatten(1))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_steps", [2, 3, 7, 64])
def test_linear_encoders_closed_form(method, n_steps):
    torch.manual_seed(0)
    S, P, D = 3, 5, 4
    encoder_a, encoder_b = LinearEncoder(S, 6, 7, D).double(), LinearEncoder(P, 2, 3, D).double()
    model = DualEncoder(encoder_a, encoder_b, normalize=False, scale=2.5)
    a, b = torch.randn(1, S, 6, dtype=torch.float64), torch.randn(1, P, 2, dtype=torch.float64)
    ra, rb = torch.randn(1, S, 6, dtype=torch.float64), torch.randn(1, P, 2, dtype=torch.float64)
    A = BilinearIntegratedInteractions(model, (encoder_a.layer, encoder_b.layer)).attribute(
        (a, b), baselines=(ra, rb), n_steps=n_steps, method=method
    )
    # Closed form: e_a = W (z_a flattened) + c, so T[k, s] = sum_h W[k, (s, h)] dz_a[s, h].
    dza = (encoder_a.layer(a) - encoder_a.layer(ra))[0]  # (S, 7)
    dzb = (encoder_b.layer(b) - encoder_b.layer(rb))[0]  # (P, 3)
    T = (encoder_a.head.weight.view(D, S, 7) * dza).sum(-1)
    U = (encoder_b.head.weight.view(D, P, 3) * dzb).sum(-1)
    # Constant Jacobians: every rule integrates them exactly (Captum's own riemann_trapezoid
    # steps sum to (n-1)/n and gave ((n-1)/n)^2 of this, 3.1% off at n = 64).
    expected = 2.5 * T.T @ U
    torch.testing.assert_close(A[0], expected.detach(), rtol=1e-10, atol=1e-12)


def test_linear_encoders_without_multiplying_by_inputs():
    """multiply_by_inputs=False: the integrated Jacobians are summed over hidden dims
    instead of contracted with the activation change (Captum's convention)."""
    torch.manual_seed(1)
    S, P, D = 2, 3, 4
    encoder_a, encoder_b = LinearEncoder(S, 3, 5, D).double(), LinearEncoder(P, 2, 3, D).double()
    model = DualEncoder(encoder_a, encoder_b, normalize=False)
    a, b = torch.randn(1, S, 3, dtype=torch.float64), torch.randn(1, P, 2, dtype=torch.float64)
    bii = BilinearIntegratedInteractions(model, (encoder_a.layer, encoder_b.layer), multiply_by_inputs=False)
    assert not bii.multiplies_by_inputs
    A = bii.attribute((a, b), n_steps=3)
    T = encoder_a.head.weight.view(D, S, 5).sum(-1)
    U = encoder_b.head.weight.view(D, P, 3).sum(-1)
    torch.testing.assert_close(A[0], (T.T @ U).detach(), rtol=1e-10, atol=1e-12)


def test_layer_input_equals_previous_layer_output(pixels):
    """Attributing to layers[-1]'s input is attributing to layers[-2]'s output."""
    model = make_clip(dtype=torch.float64)
    inputs = (caption(320, 1125, 539), pixels.double())
    by_output = BilinearIntegratedInteractions(model, clip_layers(model, -2)).attribute(inputs, n_steps=8)
    by_input = BilinearIntegratedInteractions(model, clip_layers(model, -1)).attribute(
        inputs, n_steps=8, attribute_to_layer_input=True)
    torch.testing.assert_close(by_input, by_output, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ (d) swapped sides


def test_swapping_sides_transposes(clip, pixels):
    input_ids = caption(320, 1125, 539, 2368)
    layers = clip_layers(clip)
    forward = BilinearIntegratedInteractions(clip, layers).attribute((input_ids, pixels), n_steps=8)

    def text(ids):
        return clip.get_text_features(input_ids=ids)

    def image(px):
        return clip.get_image_features(pixel_values=px)

    swapped_model = DualEncoder(image, text)
    reference_ids = torch.tensor([[BOS, PAD, PAD, PAD, PAD, EOS]])
    swapped = BilinearIntegratedInteractions(swapped_model, layers[::-1]).attribute(
        (pixels, input_ids), baselines=(black(pixels), reference_ids), n_steps=8
    )
    torch.testing.assert_close(swapped[0].T, forward[0], rtol=1e-4, atol=1e-7)


# ------------------------------------------------------------------ (e) batch vs single


def test_batch_with_padding_equals_single_runs(clip):
    torch.manual_seed(3)
    short = caption(320, 1125)
    long = caption(320, 1125, 539, 320, 2368)
    input_ids = torch.full((2, long.shape[1]), EOS)  # HF's CLIP tokenizer pads with EOS
    input_ids[0, : short.shape[1]] = short[0]
    input_ids[1] = long[0]
    attention_mask = (torch.arange(long.shape[1]) < torch.tensor([[short.shape[1]], [long.shape[1]]])).long()
    pixel_values = torch.randn(2, 3, 32, 32)
    bii = BilinearIntegratedInteractions(clip, clip_layers(clip))
    batched, batched_delta = bii.attribute(
        (input_ids, pixel_values), additional_forward_args=((attention_mask,), None), n_steps=8,
        return_convergence_delta=True, internal_batch_size=7,
    )
    for row, ids in enumerate((short, long)):
        single, single_delta = bii.attribute((ids, pixel_values[row : row + 1]), n_steps=8, return_convergence_delta=True)
        length = ids.shape[1]
        torch.testing.assert_close(batched[row, :length], single[0], rtol=1e-4, atol=1e-6)
        # Padded positions never reach the EOS token: no interaction.
        assert batched[row, length:].abs().sum().item() < 1e-7
        torch.testing.assert_close(batched_delta[row], single_delta[0], rtol=1e-3, atol=1e-6)


def test_internal_batch_size_does_not_change_the_result(clip, pixels):
    bii = BilinearIntegratedInteractions(clip, clip_layers(clip))
    inputs = (caption(320, 1125, 539), pixels)
    whole = bii.attribute(inputs, n_steps=4)
    chunked = bii.attribute(inputs, n_steps=4, internal_batch_size=3)
    torch.testing.assert_close(whole, chunked, rtol=1e-5, atol=1e-7)


# -------------------------------------------------------------- (f) Siamese text-text


def test_siamese_text_text_with_one_layer_module():
    bert = make_bert().double()

    def mean_pooled(input_ids, attention_mask):
        hidden = bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1)

    model = DualEncoder(mean_pooled, mean_pooled)
    layer = bert.encoder.layer[1]
    ids_a, ids_b = torch.tensor([[2, 11, 12, 13, 3]]), torch.tensor([[2, 21, 22, 3]])
    ref_a, ref_b = torch.tensor([[2, 0, 0, 0, 3]]), torch.tensor([[2, 0, 0, 3]])
    mask_a, mask_b = torch.ones_like(ids_a), torch.ones_like(ids_b)
    bii = BilinearIntegratedInteractions(model, layer)
    A, delta = bii.attribute(
        (ids_a, ids_b), baselines=(ref_a, ref_b), additional_forward_args=((mask_a,), (mask_b,)),
        n_steps=16, return_convergence_delta=True,
    )
    assert A.shape == (1, 5, 4)

    def cosine(x, mx, y, my):
        return F.cosine_similarity(mean_pooled(x, mx), mean_pooled(y, my), dim=-1)

    with torch.no_grad():
        identity = cosine(ids_a, mask_a, ids_b, mask_b) - cosine(ref_a, mask_a, ids_b, mask_b) \
            - cosine(ids_a, mask_a, ref_b, mask_b) + cosine(ref_a, mask_a, ref_b, mask_b)
    assert abs(A.sum().item() - identity.item()) <= 1e-6 * abs(identity.item())
    # Swapping the two sentences transposes the interactions.
    swapped = bii.attribute((ids_b, ids_a), baselines=(ref_b, ref_a), additional_forward_args=((mask_b,), (mask_a,)), n_steps=16)
    torch.testing.assert_close(swapped[0].T, A[0], rtol=1e-7, atol=1e-10)


# --------------------------------------- (g) image-side projection against Captum's LIG


def _lig_oracle_setup(pixels):
    model = make_clip(dtype=torch.float64)
    pixel_values = pixels.double()
    input_ids = caption(320, 1125, 539)
    reference_ids = torch.tensor([[BOS, PAD, PAD, PAD, EOS]])
    return model, pixel_values, input_ids, reference_ids, clip_layers(model)


def _image_lig(model, layer, pixel_values, text_vector, n_steps, method):
    """Captum's LIG of text_vector . h(image) at the image layer, summed over hidden dims."""

    def conditioned(px):
        image = F.normalize(features(model.get_image_features(pixel_values=px)), dim=-1)
        return (image * text_vector).sum(-1)

    lig = LayerIntegratedGradients(conditioned, layer)
    return lig.attribute(pixel_values, baselines=black(pixel_values), n_steps=n_steps, method=method).sum(-1)[0]


def test_image_projection_equals_captum_lig_of_text_embedding_change(pixels):
    model, pixel_values, input_ids, reference_ids, layers = _lig_oracle_setup(pixels)
    A = BilinearIntegratedInteractions(model, layers).attribute((input_ids, pixel_values), n_steps=32)
    with torch.no_grad():
        text = F.normalize(features(model.get_text_features(input_ids=input_ids)), dim=-1)
        text_reference = F.normalize(features(model.get_text_features(input_ids=reference_ids)), dim=-1)
    expected = _image_lig(model, layers[1], pixel_values, text - text_reference, 32, "gausslegendre")
    # The text side's path integral sums to g(a) - g(r_a) up to Gauss-Legendre error (~1e-9 here).
    torch.testing.assert_close(A[0].sum(0), expected, rtol=1e-6, atol=1e-6 * expected.abs().max().item())


@pytest.mark.parametrize("method", METHODS)
def test_image_projection_equals_composed_captum_ligs(method, pixels):
    """For any quadrature: sum_s T[k, s] is Captum's text-side LIG of output k (summed),
    and the image projection is Captum's image-side LIG of that vector times h."""
    model, pixel_values, input_ids, reference_ids, layers = _lig_oracle_setup(pixels)
    n_steps = 6
    A = BilinearIntegratedInteractions(model, layers).attribute((input_ids, pixel_values), n_steps=n_steps, method=method)

    def text_embedding(ids):
        return F.normalize(features(model.get_text_features(input_ids=ids)), dim=-1)

    text_lig = LayerIntegratedGradients(text_embedding, layers[0])
    text_vector = torch.stack([
        text_lig.attribute(input_ids, baselines=reference_ids, target=k, n_steps=n_steps, method=method).sum()
        for k in range(model.config.projection_dim)
    ])
    expected = _image_lig(model, layers[1], pixel_values, text_vector, n_steps, method)
    if method == "riemann_trapezoid":  # Captum's steps h/2, h, ..., h/2 have h = 1/n, not 1/(n-1), per side
        expected = expected * (n_steps / (n_steps - 1)) ** 2
    # Captum rounds its step sizes to float32, hence not float64 precision.
    torch.testing.assert_close(A[0].sum(0), expected, rtol=1e-5, atol=1e-6 * expected.abs().max().item())


# ------------------------------------------------------------- half-precision models


@pytest.mark.parametrize("dtype, tolerance", [(torch.bfloat16, 3e-2), (torch.float16, 3e-3)])
def test_half_precision_models_accumulate_in_float32(dtype, tolerance, pixels):
    """The forward and backward passes run in the model's dtype; nodes, integration and
    contraction are accumulated in float32, so the result stays close to a float32 run."""
    inputs = (caption(320, 1125, 539), pixels)
    reference_model = make_clip()
    expected = BilinearIntegratedInteractions(reference_model, clip_layers(reference_model)).attribute(inputs, n_steps=16)
    model = make_clip().to(dtype)
    A, delta = BilinearIntegratedInteractions(model, clip_layers(model)).attribute(
        (inputs[0], inputs[1].to(dtype)), n_steps=16, return_convergence_delta=True
    )
    assert A.dtype == torch.float32 and delta.dtype == torch.float32
    assert (A - expected).abs().max() <= tolerance * expected.abs().max()
    assert delta.abs().item() <= 10 * tolerance * expected.sum().abs().item()
