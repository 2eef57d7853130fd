"""compute_convergence_delta: the four-term delta for BilinearIntegratedInteractions
(oracle: the four similarities straight from the HF model's get_text_features /
get_image_features), none for InteractionCAM (no completeness property)."""

import re

import pytest
import torch
import torch.nn.functional as F
from conftest import BOS, EOS, PAD, caption, clip_layers, features, make_clip

from captum_bilinear import BilinearIntegratedInteractions, InteractionCAM
from captum_bilinear._core.base import FourTermConvergenceDelta
from captum_bilinear.references import CLIP_IMAGE_MEAN, CLIP_IMAGE_STD


assert issubclass(BilinearIntegratedInteractions, FourTermConvergenceDelta)


def hf_identity(model, input_ids, reference_ids, pixel_values, reference_pixels):
    def similarity(ids, px):
        text = features(model.get_text_features(input_ids=ids))
        image = features(model.get_image_features(pixel_values=px))
        return F.cosine_similarity(text, image, dim=-1)

    with torch.no_grad():
        return (similarity(input_ids, pixel_values) - similarity(reference_ids, pixel_values)
                - similarity(input_ids, reference_pixels) + similarity(reference_ids, reference_pixels))


def black(pixel_values):
    """CLIP's black image, (0 - mean) / std, in the pixels' dtype."""
    mean = torch.tensor(CLIP_IMAGE_MEAN, dtype=pixel_values.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_IMAGE_STD, dtype=pixel_values.dtype).view(1, 3, 1, 1)
    return (torch.zeros_like(pixel_values) - mean) / std


@pytest.fixture
def setup(pixels):
    model = make_clip(dtype=torch.float64)
    input_ids = torch.cat([caption(320, 1125, 539), caption(2368, 530, 320)])
    pixel_values = torch.cat([pixels, -pixels]).to(torch.float64)
    reference_ids = torch.tensor([[BOS, PAD, PAD, PAD, EOS]] * 2)
    identity = hf_identity(model, input_ids, reference_ids, pixel_values, black(pixel_values))
    assert identity.abs().min() > 1e-3  # the checks below are not vacuous
    return model, (input_ids, pixel_values), identity


def test_four_term_delta_against_the_hf_similarities(setup):
    model, inputs, identity = setup
    method = BilinearIntegratedInteractions(model, clip_layers(model, 0))
    A, reported = method.attribute(inputs, n_steps=4, return_convergence_delta=True)
    delta = method.compute_convergence_delta(A, inputs)
    assert delta.shape == (2,)
    torch.testing.assert_close(delta, A.sum((1, 2)) - identity, rtol=0, atol=1e-10)
    torch.testing.assert_close(delta, reported, rtol=0, atol=1e-12)  # what attribute reports
    assert delta.abs().max() > 1e-9  # 4 nodes: a quadrature error to see, not a zero by construction
    # Any attributions: their sum minus the identity (e.g. none at all: minus the identity).
    torch.testing.assert_close(method.compute_convergence_delta(torch.zeros_like(A), inputs), -identity,
                               rtol=0, atol=1e-10)


def test_four_term_delta_refuses_attributions_of_another_shape(setup):
    model, inputs, _ = setup
    method = BilinearIntegratedInteractions(model, clip_layers(model, 0))
    with pytest.raises(ValueError, match=r"attributions: expected interactions of shape \(batch, positions_a"):
        method.compute_convergence_delta(torch.zeros(2, 5), inputs)
    with pytest.raises(TypeError, match="attributions: expected a torch.Tensor"):
        method.compute_convergence_delta([0.0, 0.0], inputs)


@pytest.mark.parametrize("shape", [(2, 17, 5), (2, 5, 16), (2, 1, 85), (2, 4, 17)])
def test_four_term_delta_refuses_interactions_of_other_positions(setup, shape):
    """5 tokens x (CLS + 16 patches) at these layers: a transposed matrix, one of a
    patch-only grid, a flattened one, one of another caption were accepted (their sum
    compared with the identity as if they were these interactions)."""
    model, inputs, _ = setup
    method = BilinearIntegratedInteractions(model, clip_layers(model, 0))
    with pytest.raises(ValueError, match=r"attributions: expected the interactions of these inputs at these layers, "
                                         r"of shape \(batch, positions_a, positions_b\) = \(2, 5, 17\), got shape "
                                         + re.escape(str(shape))):
        method.compute_convergence_delta(torch.zeros(shape, dtype=torch.float64), inputs)


def test_interaction_cam_has_no_convergence_delta(setup):
    model, inputs, _ = setup
    icam = InteractionCAM(model, clip_layers(model, 0))
    assert not icam.has_convergence_delta()
    A = icam.attribute(inputs)
    with pytest.raises(NotImplementedError, match="InteractionCAM has no completeness property"):
        icam.compute_convergence_delta(A, inputs)
