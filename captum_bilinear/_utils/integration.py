"""Integrated Jacobian products of one encoder side, without building the Jacobian.

Every function here integrates along the straight path ``reference + alpha * delta``
of a layer activation with the quadrature ``(alphas, weights)`` and runs the layers
above the attributed one on batches of interpolated activations ("rows"), at most
``internal_batch_size`` rows per pass. Results are accumulated in at least float32.

* :func:`integrated_jvps` -- forward mode, one JVP per (node, position):
  ``T[k, p] = sum_i w_i <d e_k(r + a_i delta) / d z[p], direction[p]>``.
* :func:`integrated_vjps` -- reverse mode, one VJP per (node, cotangent ``c``):
  ``R[c, p] = sum_i w_i <d (c . e)(r + a_i delta) / d z[p], direction[p]>``.

``direction`` is ``delta`` for attributions that multiply by inputs, else ones.
``progress`` advances by the rows of each pass (its total is the caller's business).
"""

from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.autograd.forward_ad as forward_ad
from torch import Tensor

from captum_bilinear._utils.encoder_side import EncoderSide
from captum_bilinear._utils.positions import num_positions, one_position_directions, sum_hidden
from captum_bilinear._utils.progress import SILENT, Progress


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision models, the model's dtype otherwise."""
    return torch.promote_types(dtype, torch.float32)


def row_chunks(total_rows: int, internal_batch_size: Optional[int]) -> Iterator[slice]:
    size = total_rows if internal_batch_size is None else max(1, internal_batch_size)
    for start in range(0, total_rows, size):
        yield slice(start, min(start + size, total_rows))


@contextmanager
def forward_mode_attention() -> Iterator[None]:
    """SDPA's fused CPU kernels have no forward-mode derivative; the math kernel does."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3
        yield
        return
    with sdpa_kernel(SDPBackend.MATH):
        yield


def _path_points(reference: Tensor, delta: Tensor, alphas: Tensor) -> Tensor:
    """``reference + alpha * delta`` per alpha, computed in at least float32 (half-precision
    nodes would be off by up to 0.4%) and cast to the model's dtype."""
    accum = accumulation_dtype(reference.dtype)
    shape = (-1,) + (1,) * (reference.dim() - 1)
    points = reference.to(accum) + alphas.to(accum).view(shape) * delta.to(accum)
    return points.to(reference.dtype)


def integrated_jvps(
    side: EncoderSide,
    reference: Tensor,
    delta: Tensor,
    direction: Tensor,
    alphas: Tensor,
    weights: Tensor,
    internal_batch_size: Optional[int] = None,
    progress: Progress = SILENT,
) -> Tensor:
    """``(D, positions)``: integrated directional derivatives of the side's embedding
    along ``direction`` restricted to each position (forward mode)."""
    positions = num_positions(delta)
    accum = accumulation_dtype(delta.dtype)
    device = delta.device
    result: Optional[Tensor] = None
    for rows in row_chunks(len(alphas) * positions, internal_batch_size):
        row_index = torch.arange(rows.start, rows.stop, device=device)
        node, position = row_index // positions, row_index % positions
        primal = _path_points(reference, delta, alphas.to(device)[node])
        tangent = one_position_directions(direction, position)
        with torch.no_grad(), forward_mode_attention(), forward_ad.dual_level():
            embedding = side.embed_from(forward_ad.make_dual(primal, tangent))
            jvp = forward_ad.unpack_dual(embedding).tangent
        if jvp is None:  # the embedding does not depend on the layer
            jvp = torch.zeros_like(embedding)
        weighted = (jvp.to(accum) * weights.to(device=device, dtype=accum)[node, None]).T
        if result is None:
            result = torch.zeros(jvp.shape[1], positions, dtype=accum, device=device)
        result.index_add_(1, position, weighted)
        progress.advance(rows.stop - rows.start)
    assert result is not None
    return result


def integrated_vjps(
    side: EncoderSide,
    reference: Tensor,
    delta: Tensor,
    direction: Tensor,
    alphas: Tensor,
    weights: Tensor,
    cotangents: Tensor,
    internal_batch_size: Optional[int] = None,
    sum_hidden_dims: bool = True,
    progress: Progress = SILENT,
) -> Tensor:
    """``(C, positions)`` (or ``(C, *activation shape)`` with ``sum_hidden_dims=False``):
    for each cotangent ``c`` (rows of ``cotangents``, shape ``(C, D)``), the integrated
    gradient of the scalar ``c . embedding`` times ``direction`` (reverse mode)."""
    count = cotangents.shape[0]
    accum = accumulation_dtype(delta.dtype)
    device = delta.device
    result: Optional[Tensor] = None
    for rows in row_chunks(len(alphas) * count, internal_batch_size):
        row_index = torch.arange(rows.start, rows.stop, device=device)
        node, target = row_index // count, row_index % count
        primal = _path_points(reference, delta, alphas.to(device)[node]).requires_grad_(True)
        with torch.enable_grad():
            embedding = side.embed_from(primal)
            if not embedding.requires_grad:  # the embedding does not depend on the layer
                gradient = torch.zeros_like(primal)
            else:
                (gradient,) = torch.autograd.grad(
                    embedding, primal, grad_outputs=cotangents[target].to(embedding.dtype), allow_unused=True
                )
                gradient = torch.zeros_like(primal) if gradient is None else gradient
        products = gradient.detach().to(accum) * direction.to(accum)
        if sum_hidden_dims:
            products = sum_hidden(products)
        weighted = products * weights.to(device=device, dtype=accum)[node].view(
            (-1,) + (1,) * (products.dim() - 1)
        )
        if result is None:
            result = torch.zeros((count,) + tuple(products.shape[1:]), dtype=accum, device=device)
        result.index_add_(0, target, weighted)
        progress.advance(rows.stop - rows.start)
    assert result is not None
    return result
