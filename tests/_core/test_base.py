"""What every interaction method shares: refusing layers that cannot be attributed."""

import pytest
import torch
from conftest import caption, clip_layers
from torch import nn

from captum_bilinear import (
    BilinearIntegratedInteractions,
    DualEncoder,
    InteractionCAM,
    InteractionLIME,
    TokenPatchSimilarity,
    WeightedBanzhafInteractions,
)


class WithUnusedBranch(nn.Module):
    """Calls ``side`` but drops its output: a module that never reaches the embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.side = nn.Linear(4, 4, dtype=torch.float64)
        self.main = nn.Linear(4, 3, dtype=torch.float64)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.side(z)
        return self.main(torch.tanh(z)).mean(1)


@pytest.mark.parametrize("method, options", [(InteractionLIME, dict(n_samples=40, random_state=0)),
                                             (WeightedBanzhafInteractions, dict(budget=64, random_state=0)),
                                             (BilinearIntegratedInteractions, dict(n_steps=4)),
                                             (BilinearIntegratedInteractions, dict(n_steps="auto")),
                                             (InteractionCAM, dict())])
def test_a_layer_whose_output_never_reaches_the_embedding_is_refused(method, options):
    """Without the check the gradient methods die in autograd ("not used in the graph")
    and the masking methods return about zero."""
    torch.manual_seed(0)
    encode_a, encode_b = WithUnusedBranch(), WithUnusedBranch()
    model = DualEncoder(encode_a, encode_b)
    inputs = (torch.randn(1, 3, 4, dtype=torch.float64), torch.randn(1, 2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"layer\[0\]: the embedding is the same .* never reaches the embedding"):
        method(model, (encode_a.side, encode_b.main)).attribute(inputs, **options)


def test_itsm_on_a_projection_layer_names_the_layer(clip, pixels):
    itsm = TokenPatchSimilarity(clip, (clip.text_projection, clip.vision_model.encoder.layers[0]), variant="hidden")
    with pytest.raises(ValueError, match=r"layer\[0\]: ITSM needs per-position hidden states"):
        itsm.attribute((caption(320), pixels))


def test_sizing_helpers_work_on_instances(clip):
    assert InteractionLIME(clip, clip_layers(clip)).minimum_samples(12, 50) == 663
    assert WeightedBanzhafInteractions(clip, clip_layers(clip)).minimum_budget(12, 49) == 650
