"""completeness_error / relative_completeness_error against hand-computed sums."""

from collections import namedtuple

import pytest
import torch

from captum_bilinear.metrics import completeness_error, relative_completeness_error


def interactions():
    # example 0 sums to 1.0, example 1 sums to -2.0
    first = torch.tensor([[0.5, 0.25, 0.0], [0.25, 0.0, 0.0]])
    second = torch.tensor([[-1.0, -1.0, 0.5], [0.0, 0.0, -0.5]])
    return torch.stack([first, second])


def test_absolute_error_per_example():
    error = completeness_error(interactions(), torch.tensor([0.75, -2.0]))
    assert torch.allclose(error, torch.tensor([0.25, 0.0]))


def test_relative_error_per_example():
    error = relative_completeness_error(interactions(), torch.tensor([0.5, -4.0]))
    assert torch.allclose(error, torch.tensor([1.0, 0.5]))


def test_scalar_identity_broadcasts():
    assert torch.allclose(completeness_error(interactions(), 1.0), torch.tensor([0.0, 3.0]))


def test_relative_error_of_zero_identity_is_inf():
    error = relative_completeness_error(interactions()[:1], torch.tensor([0.0]))
    assert torch.isinf(error).all()


def test_similarity_terms_like_object_is_read_through_interaction():
    Terms = namedtuple("Terms", "similarity reference_a reference_b reference_both")

    class WithInteraction(Terms):
        @property
        def interaction(self):
            return self.similarity - self.reference_a - self.reference_b + self.reference_both

    terms = WithInteraction(*(torch.tensor([v, v]) for v in (1.5, 0.25, 0.5, 0.0)))  # identity 0.75
    error = completeness_error(interactions(), terms)
    assert torch.allclose(error, torch.tensor([0.25, 2.75]))


def test_bad_inputs():
    with pytest.raises(ValueError, match="interactions"):
        completeness_error(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="identity"):
        completeness_error(torch.zeros(2, 3, 4), torch.zeros(3))
    with pytest.raises(TypeError, match="interactions"):
        completeness_error("A", torch.zeros(1))
    with pytest.raises(ValueError, match="interactions"):
        completeness_error(torch.full((1, 2, 2), float("nan")), torch.zeros(1))
