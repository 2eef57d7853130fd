"""Masking positions at a layer: a dropped position takes the reference's activation.

At an embedding layer this is input masking (a token replaced by the reference's token,
a patch by the reference image's patch embedding); at a hidden layer it removes the
position's content from the layers above. Used by the perturbation methods
(InteractionLIME, WeightedBanzhafInteractions) and the evaluation metrics.
"""

from typing import Optional

import torch
from torch import Tensor

from captum_bilinear._utils.encoder_side import EncoderSide
from captum_bilinear._utils.integration import row_chunks
from captum_bilinear._utils.positions import as_positions, from_positions


def masked_activations(activation: Tensor, reference: Tensor, keep: Tensor) -> Tensor:
    """``(m, *activation)``: row ``i`` keeps the positions where ``keep[i]`` is True and
    takes ``reference``'s activation elsewhere.

    Args:
        activation, reference: one example's activations ``(1, *shape)``.
        keep: ``(m, positions)`` boolean (or 0/1) mask.
    """
    view, reference_view = as_positions(activation), as_positions(reference)
    mask = keep.to(device=view.device, dtype=view.dtype).unsqueeze(-1)  # (m, P, 1)
    mixed = reference_view + mask * (view - reference_view)
    return from_positions(mixed, tuple(activation.shape))


def masked_embeddings(
    side: EncoderSide,
    activation: Tensor,
    reference: Tensor,
    keep: Tensor,
    internal_batch_size: Optional[int] = None,
) -> Tensor:
    """``(m, D)`` embeddings of the side with the positions outside ``keep[i]`` masked."""
    embeddings = []
    with torch.no_grad():
        for rows in row_chunks(keep.shape[0], internal_batch_size):
            embeddings.append(side.embed_from(masked_activations(activation, reference, keep[rows])))
    return torch.cat(embeddings)
