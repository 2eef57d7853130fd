"""Encoders that cannot take a larger batch at the layer than at their input: the
endpoint pass detects it and the path rows fall back to repeated inputs, with the
same (closed-form) result as a well-behaved encoder."""

import pytest
import torch

from captum_bilinear import BilinearIntegratedInteractions, DualEncoder
from captum_bilinear._utils.encoder_side import EncoderSide, ExpansionAcrossExamples
from captum_bilinear._utils.layer_hooks import LayerTap


class LinearEncoder(torch.nn.Module):
    """``head(layer(x))``, written two ways above the layer."""

    def __init__(self, positions, d_in, hidden, embedding_dim, above="flatten"):
        super().__init__()
        self.layer = torch.nn.Linear(d_in, hidden)
        self.head = torch.nn.Linear(positions * hidden, embedding_dim)
        self.above = above

    def forward(self, x):
        z = self.layer(x)
        if self.above == "flatten":  # broadcasts: batch taken from the activation
            return self.head(z.flatten(1))
        # batch taken from the input: fails on more activations than inputs
        return self.head(z.reshape(x.shape[0], -1))


@pytest.mark.parametrize("above, expands", [("flatten", True), ("input_batch", False)])
def test_endpoint_pass_decides_expansion_and_matches_single_rows(above, expands):
    torch.manual_seed(0)
    encoder = LinearEncoder(3, 4, 5, 6, above).double()
    x, reference = torch.randn(1, 3, 4, dtype=torch.float64), torch.randn(1, 3, 4, dtype=torch.float64)
    side = EncoderSide(encoder, (x,), (), LayerTap(encoder.layer))
    activation, embedding = side.capture()
    reference_activation = side.activation((reference,))
    endpoints = side.endpoint_embeddings(activation, reference_activation, embedding)
    assert side.expands_at_layer is expands
    with torch.no_grad():
        expected = torch.cat([encoder(x), encoder(reference)])
    torch.testing.assert_close(endpoints, expected)


@pytest.mark.parametrize("above, expands", [("flatten", True), ("input_batch", False)])
def test_the_first_example_decides_expansion_for_the_later_ones(above, expands):
    torch.manual_seed(3)
    encoder = LinearEncoder(3, 4, 5, 6, above).double()
    x, reference = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(1, 3, 4, dtype=torch.float64)
    examples = ExpansionAcrossExamples(encoder, LayerTap(encoder.layer))
    assert not examples.decided
    first = examples.capture((x[:1],), (), (reference,))
    assert examples.expands_at_layer is expands and first.embeddings is not None
    second = examples.capture((x[1:],), (), (reference,))
    assert second.embeddings is None and second.side.expands_at_layer is expands
    again = examples.capture((x[1:],), (), (reference,), endpoints=True)
    with torch.no_grad():
        torch.testing.assert_close(again.embeddings, torch.cat([encoder(x[1:]), encoder(reference)]))
        torch.testing.assert_close(again.activation, encoder.layer(x[1:]))
    zero = examples.capture((x[1:],), (), None, zero_reference=True)
    assert zero.reference.shape == zero.activation.shape and zero.reference.abs().max() == 0


@pytest.mark.parametrize("internal_batch_size", [None, 4])
@pytest.mark.parametrize("above", ["flatten", "input_batch"])
def test_interactions_equal_the_closed_form_whichever_way_rows_are_batched(above, internal_batch_size):
    torch.manual_seed(1)
    S, P, D = 3, 4, 5
    encoder_a, encoder_b = LinearEncoder(S, 4, 6, D, above).double(), LinearEncoder(P, 2, 3, D, above).double()
    model = DualEncoder(encoder_a, encoder_b, normalize=False)
    a, b = torch.randn(1, S, 4, dtype=torch.float64), torch.randn(1, P, 2, dtype=torch.float64)
    ra, rb = torch.randn(1, S, 4, dtype=torch.float64), torch.randn(1, P, 2, dtype=torch.float64)
    A = BilinearIntegratedInteractions(model, (encoder_a.layer, encoder_b.layer)).attribute(
        (a, b), baselines=(ra, rb), n_steps=3, internal_batch_size=internal_batch_size
    )
    with torch.no_grad():
        dza = (encoder_a.layer(a) - encoder_a.layer(ra))[0]
        dzb = (encoder_b.layer(b) - encoder_b.layer(rb))[0]
        T = (encoder_a.head.weight.view(D, S, 6) * dza).sum(-1)
        U = (encoder_b.head.weight.view(D, P, 3) * dzb).sum(-1)
    torch.testing.assert_close(A[0], T.T @ U, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("above", ["flatten", "input_batch"])
def test_reference_equal_to_the_input_gives_zero_interactions(above):
    """No probe is possible with two equal rows; the inputs are repeated, which any
    encoder accepts, and every interaction is zero."""
    torch.manual_seed(2)
    encoder_a, encoder_b = LinearEncoder(3, 4, 6, 5, above).double(), LinearEncoder(4, 2, 3, 5, above).double()
    model = DualEncoder(encoder_a, encoder_b, normalize=False)
    a, b = torch.randn(1, 3, 4, dtype=torch.float64), torch.randn(1, 4, 2, dtype=torch.float64)
    A, delta = BilinearIntegratedInteractions(model, (encoder_a.layer, encoder_b.layer)).attribute(
        (a, b), baselines=(a, torch.randn(1, 4, 2, dtype=torch.float64)), n_steps=3, return_convergence_delta=True
    )
    assert A.abs().max() == 0 and delta.abs().max() == 0
