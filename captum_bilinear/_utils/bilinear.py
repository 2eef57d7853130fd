"""The bilinear combination of two sides' integrated Jacobians, without either Jacobian.

``A[s, p] = scale * sum_k T[k, s] U[k, p]`` with ``T`` (``U``) the integrated Jacobian of
side a (b) times its direction, summed over hidden dims per position. One side's ``T`` is
computed (forward or reverse mode, whichever needs fewer passes); the other side is
reached by contraction: row ``s`` of ``A`` is the integrated gradient of the scalar
``T[:, s] . h`` (one VJP per first-side position and node).
"""

from typing import Optional

import torch
from torch import Tensor

from captum_bilinear._utils.encoder_side import EncoderSide
from captum_bilinear._utils.integration import integrated_jvps, integrated_vjps
from captum_bilinear._utils.positions import num_positions
from captum_bilinear._utils.progress import SILENT, Progress


class PathSide:
    """One side's straight path ``reference + alpha * delta`` and its direction."""

    def __init__(self, encoder: EncoderSide, activation: Tensor, reference: Tensor, multiply_by_inputs: bool) -> None:
        self.encoder = encoder
        self.reference = reference
        self.delta = activation - reference
        self.direction = self.delta if multiply_by_inputs else torch.ones_like(self.delta)
        self.positions = num_positions(self.delta)

    def integrated_jacobian(
        self, alphas: Tensor, weights: Tensor, embedding_dim: int, internal_batch_size: Optional[int],
        progress: Progress = SILENT,
    ) -> Tensor:
        """``(D, positions)``: forward mode (one JVP per position and node) when there are
        fewer positions than embedding dimensions, else reverse mode (one VJP per
        embedding dimension and node)."""
        if self.positions <= embedding_dim:
            return integrated_jvps(
                self.encoder, self.reference, self.delta, self.direction, alphas, weights, internal_batch_size, progress
            )
        identity = torch.eye(embedding_dim, dtype=self.delta.dtype, device=self.delta.device)
        return self.contract(identity, alphas, weights, internal_batch_size, progress)

    def contract(
        self, cotangents: Tensor, alphas: Tensor, weights: Tensor, internal_batch_size: Optional[int],
        progress: Progress = SILENT,
    ) -> Tensor:
        """``(C, positions)``: integrated gradient of each ``cotangents[c] . embedding``."""
        return integrated_vjps(
            self.encoder, self.reference, self.delta, self.direction, alphas, weights, cotangents, internal_batch_size,
            progress=progress,
        )

    def pass_count(self, embedding_dim: int) -> int:
        """Passes per node if this side goes first: its Jacobian, then one contraction
        VJP per position on the other side."""
        return min(self.positions, embedding_dim) + self.positions


def bilinear_interactions(
    side_a: PathSide,
    side_b: PathSide,
    alphas: Tensor,
    weights: Tensor,
    embedding_dim: int,
    scale: float,
    internal_batch_size: Optional[int] = None,
    progress: Progress = SILENT,
) -> Tensor:
    """``(positions_a, positions_b)`` interactions, the cheaper side order chosen."""
    a_first = side_a.pass_count(embedding_dim) <= side_b.pass_count(embedding_dim)
    first, second = (side_a, side_b) if a_first else (side_b, side_a)
    progress.expect(len(alphas) * first.pass_count(embedding_dim))
    jacobian = first.integrated_jacobian(alphas, weights, embedding_dim, internal_batch_size, progress)  # (D, S_first)
    contracted = second.contract(jacobian.T.contiguous(), alphas, weights, internal_batch_size, progress)  # (S_first, S_second)
    return scale * (contracted if a_first else contracted.T)
