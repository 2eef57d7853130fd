"""Integrated Jacobian products of one encoder side, without building the Jacobian.

Every function here integrates along the straight path ``reference + alpha * delta``
of a layer activation with the quadrature ``(alphas, weights)`` and runs the layers
above the attributed one on batches of interpolated activations ("rows"), at most
``internal_batch_size`` rows per pass (None: :data:`DEFAULT_ROWS_PER_PASS`, so that the
cost per node stays flat however many nodes there are). Results are accumulated in at
least float32.

* :func:`integrated_jvps` -- forward mode, one JVP per (node, position):
  ``T[k, p] = sum_i w_i <d e_k(r + a_i delta) / d z[p], direction[p]>``.
* :func:`integrated_vjps` -- reverse mode, one VJP per (node, cotangent ``c``):
  ``R[c, p] = sum_i w_i <d (c . e)(r + a_i delta) / d z[p], direction[p]>``.

``weights`` is ``(nodes,)`` or ``(K, nodes)``: K weight vectors over the same nodes give K
integrals at once (the panels of a composite rule), with a leading ``K`` axis in the
result. ``direction`` is ``delta`` for attributions that multiply by inputs, else ones.
``progress`` advances by the rows of each pass (its total is the caller's business).
"""

from typing import Callable, Iterator, Optional

import torch
import torch.autograd.forward_ad as forward_ad
from torch import Tensor

from captum_bilinear._utils.encoder_side import EncoderSide
from captum_bilinear._utils.forward_mode import forward_mode_section
from captum_bilinear._utils.positions import group_directions, num_positions, one_position_directions, sum_hidden
from captum_bilinear._utils.progress import SILENT, Progress

#: Rows per pass when ``internal_batch_size`` is None: measured in
#: ``benchmarks/auto_steps.py`` (larger passes stop paying off well before this, and
#: all of a pair's rows at once made a node at N=256 cost 3x one at N=8).
DEFAULT_ROWS_PER_PASS = 256


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision models, the model's dtype otherwise."""
    return torch.promote_types(dtype, torch.float32)


def row_chunks(total_rows: int, internal_batch_size: Optional[int]) -> Iterator[slice]:
    size = total_rows if internal_batch_size is None else max(1, internal_batch_size)
    for start in range(0, total_rows, size):
        yield slice(start, min(start + size, total_rows))


def rows_per_pass(internal_batch_size: Optional[int]) -> int:
    return DEFAULT_ROWS_PER_PASS if internal_batch_size is None else max(1, internal_batch_size)


def _as_panels(weights: Tensor, accum: torch.dtype, device: torch.device) -> Tensor:
    """``(K, nodes)`` weights in the accumulation dtype."""
    return weights.to(device=device, dtype=accum).reshape(-1, weights.shape[-1])


def _squeezed(result: Tensor, weights: Tensor) -> Tensor:
    return result[0] if weights.dim() == 1 else result


def _path_points(reference: Tensor, delta: Tensor, alphas: Tensor) -> Tensor:
    """``reference + alpha * delta`` per alpha, computed in at least float32 (half-precision
    nodes would be off by up to 0.4%) and cast to the model's dtype."""
    accum = accumulation_dtype(reference.dtype)
    shape = (-1,) + (1,) * (reference.dim() - 1)
    points = reference.to(accum) + alphas.to(device=reference.device, dtype=accum).view(shape) * delta.to(accum)
    return points.to(reference.dtype)


def path_embeddings(side: EncoderSide, reference: Tensor, delta: Tensor, alphas: Tensor,
                    internal_batch_size: Optional[int] = None) -> Tensor:
    """``(len(alphas), D)``: the side's embedding at each path point (no derivatives)."""
    with torch.no_grad():
        return torch.cat([side.embed_from(_path_points(reference, delta, alphas[rows]))
                          for rows in row_chunks(len(alphas), rows_per_pass(internal_batch_size))])


def _with_fallback(shared: Callable[[], Tensor], by_rows: Callable[[], Tensor], *markers: str) -> Tensor:
    """``shared()`` (one primal / forward shared by many tangents / cotangents), or
    ``by_rows()`` for models whose ops have no batching rule for it."""
    try:
        return shared()
    except RuntimeError as error:  # e.g. an op without a batching rule, or a data-dependent branch
        if not any(marker in str(error).lower() for marker in markers):
            raise
        return by_rows()


def integrated_jvps(
    side: EncoderSide,
    reference: Tensor,
    delta: Tensor,
    direction: Tensor,
    alphas: Tensor,
    weights: Tensor,
    internal_batch_size: Optional[int] = None,
    progress: Progress = SILENT,
    groups: Optional[Tensor] = None,
) -> Tensor:
    """``(D, positions)`` (``(K, D, positions)`` for ``(K, nodes)`` weights): integrated
    directional derivatives of the side's embedding along ``direction`` restricted to
    each position (forward mode); with ``groups`` (``(G, positions)`` weights) along
    ``direction`` restricted to each group, ``(D, G)``: one JVP per group, not per position.

    The primal computation at a node is shared by all tangents (``vmap`` over
    ``torch.func.jvp``); models ``torch.func`` cannot trace fall back to one dual-number
    pass per (node, tangent) row."""
    arguments = (side, reference, delta, direction, alphas, weights, internal_batch_size, progress, groups)
    return _with_fallback(lambda: _jvps_sharing_primal(*arguments), lambda: _jvps_by_rows(*arguments),
                          "vmap", "batch", "functorch")


def _tangents(direction: Tensor, groups: Optional[Tensor], rows: slice) -> Tensor:
    """The tangents ``rows`` of :func:`integrated_jvps`: one per position, or one per group."""
    if groups is None:
        return one_position_directions(direction, torch.arange(rows.start, rows.stop, device=direction.device))
    return group_directions(direction, groups[rows])


def _jvps_sharing_primal(
    side: EncoderSide, reference: Tensor, delta: Tensor, direction: Tensor, alphas: Tensor, weights: Tensor,
    internal_batch_size: Optional[int], progress: Progress, groups: Optional[Tensor],
) -> Tensor:
    positions, nodes = num_positions(delta) if groups is None else groups.shape[0], len(alphas)
    budget = rows_per_pass(internal_batch_size)
    position_chunk = min(positions, budget)
    accum = accumulation_dtype(delta.dtype)
    device = delta.device
    panels = _as_panels(weights, accum, device)
    result: Optional[Tensor] = None
    for node_rows in row_chunks(nodes, max(1, budget // position_chunk)):
        primal = _path_points(reference, delta, alphas[node_rows])
        for chunk in row_chunks(positions, position_chunk):
            tangents = _tangents(direction, groups, chunk)

            def directional(tangent: Tensor, primal: Tensor = primal) -> Tensor:
                return torch.func.jvp(side.embed_from, (primal,), (tangent.expand_as(primal),))[1]

            with torch.no_grad(), forward_mode_section():
                jvps = torch.func.vmap(directional)(tangents.unsqueeze(1))  # (positions, nodes, D)
            weighted = torch.einsum("pnd,kn->kdp", jvps.to(accum), panels[:, node_rows])
            if result is None:
                result = torch.zeros(panels.shape[0], weighted.shape[1], positions, dtype=accum, device=device)
            result[:, :, chunk] += weighted
            progress.advance(jvps.shape[0] * jvps.shape[1])
    assert result is not None
    return _squeezed(result, weights)


def _jvps_by_rows(
    side: EncoderSide, reference: Tensor, delta: Tensor, direction: Tensor, alphas: Tensor, weights: Tensor,
    internal_batch_size: Optional[int], progress: Progress, groups: Optional[Tensor],
) -> Tensor:
    """One dual-number row per (node, tangent): the primal repeated for every tangent."""
    positions = num_positions(delta) if groups is None else groups.shape[0]
    accum = accumulation_dtype(delta.dtype)
    device = delta.device
    panels = _as_panels(weights, accum, device)
    result: Optional[Tensor] = None
    for rows in row_chunks(len(alphas) * positions, rows_per_pass(internal_batch_size)):
        row_index = torch.arange(rows.start, rows.stop, device=device)
        node, position = row_index // positions, row_index % positions
        primal = _path_points(reference, delta, alphas.to(device)[node])
        tangent = (one_position_directions(direction, position) if groups is None
                   else group_directions(direction, groups.to(device)[position]))
        with torch.no_grad(), forward_mode_section(), forward_ad.dual_level():
            embedding = side.embed_from(forward_ad.make_dual(primal, tangent))
            jvp = forward_ad.unpack_dual(embedding).tangent
        if jvp is None:  # the embedding does not depend on the layer
            jvp = torch.zeros_like(embedding)
        if result is None:
            result = torch.zeros(panels.shape[0], jvp.shape[1], positions, dtype=accum, device=device)
        for k in range(panels.shape[0]):
            result[k].index_add_(1, position, (jvp.to(accum) * panels[k, node, None]).T)
        progress.advance(rows.stop - rows.start)
    assert result is not None
    return _squeezed(result, weights)


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
    """``(C, positions)`` (or ``(C, *activation shape)`` with ``sum_hidden_dims=False``;
    a leading ``K`` for ``(K, nodes)`` weights): for each cotangent ``c`` (rows of
    ``cotangents``, shape ``(C, D)``), the integrated gradient of the scalar
    ``c . embedding`` times ``direction`` (reverse mode).

    The forward pass at a node is shared by all cotangents: their backward passes are
    batched over one graph (``is_grads_batched``), which saves the forward's share of the
    cost. Models whose backward cannot be batched that way fall back to one forward per
    (node, cotangent) row."""
    arguments = (side, reference, delta, direction, alphas, weights, cotangents, internal_batch_size,
                 sum_hidden_dims, progress)
    return _with_fallback(lambda: _vjps_sharing_forward(*arguments), lambda: _vjps_by_rows(*arguments),
                          "vmap", "batch")


def _contracted(gradient: Tensor, direction: Tensor, accum: torch.dtype, sum_hidden_dims: bool) -> Tensor:
    products = gradient.detach().to(accum) * direction.to(accum)
    if not sum_hidden_dims:
        return products
    return sum_hidden(products.flatten(0, -direction.dim())).view(*products.shape[: -direction.dim() + 1], -1)


def _vjps_sharing_forward(
    side: EncoderSide, reference: Tensor, delta: Tensor, direction: Tensor, alphas: Tensor, weights: Tensor,
    cotangents: Tensor, internal_batch_size: Optional[int], sum_hidden_dims: bool, progress: Progress,
) -> Tensor:
    count, nodes = cotangents.shape[0], len(alphas)
    budget = rows_per_pass(internal_batch_size)
    cotangent_chunk = min(count, budget)
    accum = accumulation_dtype(delta.dtype)
    device = delta.device
    panels = _as_panels(weights, accum, device)
    result: Optional[Tensor] = None
    for node_rows in row_chunks(nodes, max(1, budget // cotangent_chunk)):
        primal = _path_points(reference, delta, alphas[node_rows]).requires_grad_(True)
        with torch.enable_grad():
            embedding = side.embed_from(primal)
        for targets in row_chunks(count, cotangent_chunk):
            chunk = cotangents[targets].to(device=device, dtype=embedding.dtype)
            if not embedding.requires_grad:  # the embedding does not depend on the layer
                gradient = torch.zeros((chunk.shape[0],) + tuple(primal.shape), dtype=primal.dtype, device=device)
            elif chunk.shape[0] == 1:
                (gradient,) = torch.autograd.grad(embedding, primal, grad_outputs=chunk.expand_as(embedding),
                                                  retain_graph=True)
                gradient = gradient.unsqueeze(0)
            else:
                outputs = chunk[:, None, :].expand(chunk.shape[0], *embedding.shape)
                (gradient,) = torch.autograd.grad(embedding, primal, grad_outputs=outputs, retain_graph=True,
                                                  is_grads_batched=True)
            products = _contracted(gradient, direction, accum, sum_hidden_dims)  # (c, n, ...)
            weighted = torch.einsum("cn...,kn->kc...", products, panels[:, node_rows])
            if result is None:
                result = torch.zeros((panels.shape[0], count) + tuple(weighted.shape[2:]), dtype=accum, device=device)
            result[:, targets] += weighted
            progress.advance(chunk.shape[0] * primal.shape[0])
        del embedding
    assert result is not None
    return _squeezed(result, weights)


def _vjps_by_rows(
    side: EncoderSide, reference: Tensor, delta: Tensor, direction: Tensor, alphas: Tensor, weights: Tensor,
    cotangents: Tensor, internal_batch_size: Optional[int], sum_hidden_dims: bool, progress: Progress,
) -> Tensor:
    """One row per (node, cotangent): the forward repeated for every cotangent."""
    count = cotangents.shape[0]
    accum = accumulation_dtype(delta.dtype)
    device = delta.device
    panels = _as_panels(weights, accum, device)
    result: Optional[Tensor] = None
    for rows in row_chunks(len(alphas) * count, rows_per_pass(internal_batch_size)):
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
        products = _contracted(gradient, direction, accum, sum_hidden_dims)
        if result is None:
            result = torch.zeros((panels.shape[0], count) + tuple(products.shape[1:]), dtype=accum, device=device)
        for k in range(panels.shape[0]):
            row_weights = panels[k, node].view((-1,) + (1,) * (products.dim() - 1))
            result[k].index_add_(0, target, products * row_weights)
        progress.advance(rows.stop - rows.start)
    assert result is not None
    return _squeezed(result, weights)
