"""Weighted least squares on cross-modal designs, without the dense design matrix.

With cross-modal sampling the game values form a matrix ``Y`` (``m_a x m_b``): row ``i``
is side a's ``i``-th mask, column ``j`` side b's ``j``-th. A model that is linear in
products of per-side basis functions, ``phi(i, j) = psi_a(i)^T E psi_b(j)``, has the
Kronecker product of the per-side basis matrices as design. When the sample weights
factorize (``w_ij = w_a[i] w_b[j]``), its normal equations are
``G_a E G_b = Psi_a^T W_a Y W_b Psi_b`` with ``G_a = Psi_a^T W_a Psi_a``: two small solves.
All solves are in float64.

* :func:`fit_second_order_game`: intercept, first-order and cross-modal pair terms (and
  optionally the intra-modal pairs) of a two-sided game (weighted Banzhaf / FIxLIP).
* :func:`fit_bilinear_ridge`: ``phi = x_a^T W x_b + c`` with a ridge penalty and
  arbitrary (non-factorizing) weights (InteractionLIME).
"""

import math
import warnings
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor


def spd_solve(matrix: Tensor, rhs: Tensor, what: str = "the least-squares system") -> Tensor:
    """Solves ``matrix @ x = rhs`` for a symmetric positive (semi-)definite ``matrix``
    (float64): by Cholesky when it is positive definite, else the minimum-norm
    least-squares solution with a warning (the coefficients are then not identified by
    the samples).

    Example:
        >>> spd_solve(torch.eye(2, dtype=torch.float64) * 2, torch.ones(2, dtype=torch.float64))
        tensor([0.5000, 0.5000], dtype=torch.float64)
    """
    factor, info = torch.linalg.cholesky_ex(matrix)
    vector = rhs.dim() == 1
    right = rhs.unsqueeze(-1) if vector else rhs
    if int(info) == 0:
        solution = torch.cholesky_solve(right, factor)
    else:
        warnings.warn(
            f"{what} is singular: the samples do not identify every coefficient; returning the "
            "minimum-norm solution (increase the number of samples or the budget)",
            RuntimeWarning,
            stacklevel=3,
        )
        solution = torch.linalg.lstsq(matrix, right, driver="gelsd").solution
    return solution.squeeze(-1) if vector else solution


def weighted_gram(basis: Tensor, weights: Tensor) -> Tensor:
    """``basis^T diag(weights) basis`` for ``basis`` ``(m, K)`` and ``weights`` ``(m,)``.

    Example:
        >>> weighted_gram(torch.ones(3, 1), torch.tensor([1.0, 2.0, 3.0]))
        tensor([[6.]])
    """
    return basis.T @ (weights.unsqueeze(1) * basis)


@dataclass
class SecondOrderFit:
    """Terms of a fitted two-sided second-order model (float64; pairs in the order of
    :func:`captum_bilinear._utils.coalitions.pair_indices`)."""

    intercept: Tensor  #: 0-d
    first_a: Tensor  #: (n_a,)
    first_b: Tensor  #: (n_b,)
    cross: Tensor  #: (n_a, n_b)
    intra_a: Optional[Tensor]  #: (n_a (n_a-1) / 2,) or None
    intra_b: Optional[Tensor]  #: (n_b (n_b-1) / 2,) or None


def fit_second_order_game(
    basis_a: Tensor,
    weights_a: Tensor,
    basis_b: Tensor,
    weights_b: Tensor,
    values: Tensor,
    players_a: int,
    players_b: int,
    intra_modal: bool,
) -> SecondOrderFit:
    r"""Weighted least squares of ``values[i, j]`` (``m_a x m_b``) with the weights
    ``weights_a[i] * weights_b[j]`` on the terms: intercept, the first-order terms of
    both sides, the cross pairs, and with ``intra_modal`` the pairs within each side.

    Args:
        basis_a: float64 ``(m_a, K_a)`` rows ``[1, x_a]`` (``[1, x_a, pairs of x_a]``
            with ``intra_modal``), see :func:`~captum_bilinear._utils.coalitions.coalition_basis`.
        weights_a: float64 ``(m_a,)``.
        basis_b, weights_b: likewise for side b.
        values: ``(m_a, m_b)`` game values.
        players_a, players_b: the sides' numbers of players ``n_a``, ``n_b``.
        intra_modal: fit the intra-modal pairs (the bases then hold the pair columns).

    With ``L = 1 + n`` linear basis functions per side, the cross-only model is
    ``E = G_a^{-1} R G_b^{-1}`` (``R = Psi_a^T W_a Y W_b Psi_b``). The intra-modal columns
    (``pair_a x 1`` and ``1 x pair_b``) are added by block elimination: the Schur
    complement of the cross block is block-diagonal, ``G_b[0,0] S_a`` and
    ``G_a[0,0] S_b`` with ``S_a`` the Schur complement of side a's linear block in
    ``G_a``; solving it changes only the intercept and first-order terms, so the cross
    pairs are the same with and without intra-modal terms.

    Returns:
        :class:`SecondOrderFit` (float64).

    Example:
        >>> from captum_bilinear._utils.coalitions import as_generator, coalition_basis, weighted_coalitions
        >>> side_a = weighted_coalitions(2, 4, 0.5, as_generator(0))
        >>> side_b = weighted_coalitions(3, 8, 0.5, as_generator(0))
        >>> x_a, x_b = side_a.masks.double(), side_b.masks.double()
        >>> values = 1 + 2 * x_a[:, :1] + (x_a @ torch.ones(2, 3, dtype=torch.float64) @ x_b.T)  # intercept, first, cross
        >>> fit = fit_second_order_game(coalition_basis(side_a.masks, False), side_a.weights,
        ...                             coalition_basis(side_b.masks, False), side_b.weights, values, 2, 3, False)
        >>> round(float(fit.intercept), 6), [round(float(v), 6) + 0.0 for v in fit.first_a]
        (1.0, [2.0, 0.0])
        >>> torch.allclose(fit.cross, torch.ones(2, 3, dtype=torch.float64))
        True
    """
    linear_a, linear_b = 1 + players_a, 1 + players_b
    gram_a = weighted_gram(basis_a, weights_a)
    gram_b = weighted_gram(basis_b, weights_b)
    rhs = (weights_a.unsqueeze(1) * basis_a).T @ values.to(torch.float64) @ (weights_b.unsqueeze(1) * basis_b)
    la, lb = slice(0, linear_a), slice(0, linear_b)
    qa, qb = slice(linear_a, None), slice(linear_b, None)
    left = spd_solve(gram_a[la, la], rhs[la, lb], "side a's Gram matrix")
    cross_only = spd_solve(gram_b[lb, lb], left.T, "side b's Gram matrix").T  # G_a^-1 R G_b^-1
    intra_a = intra_b = None
    terms = cross_only
    if intra_modal:
        terms = cross_only.clone()
        hat_a = spd_solve(gram_a[la, la], gram_a[la, qa], "side a's Gram matrix")  # (L_a, Q_a)
        hat_b = spd_solve(gram_b[lb, lb], gram_b[lb, qb], "side b's Gram matrix")
        schur_a = gram_a[qa, qa] - gram_a[qa, la] @ hat_a
        schur_b = gram_b[qb, qb] - gram_b[qb, lb] @ hat_b
        if schur_a.shape[0]:
            target_a = rhs[qa, 0] - gram_a[qa, la] @ cross_only @ gram_b[lb, 0]
            intra_a = spd_solve(schur_a, target_a, "side a's pair terms") / gram_b[0, 0]
            terms[:, 0] -= hat_a @ intra_a
        else:
            intra_a = torch.zeros(0, dtype=torch.float64)
        if schur_b.shape[0]:
            target_b = rhs[0, qb] - gram_b[qb, lb] @ cross_only.T @ gram_a[la, 0]
            intra_b = spd_solve(schur_b, target_b, "side b's pair terms") / gram_a[0, 0]
            terms[0, :] -= hat_b @ intra_b
        else:
            intra_b = torch.zeros(0, dtype=torch.float64)
    return SecondOrderFit(terms[0, 0], terms[1:, 0], terms[0, 1:], terms[1:, 1:], intra_a, intra_b)


def fit_bilinear_ridge(keep_a: Tensor, keep_b: Tensor, values: Tensor, weights: Tensor, alpha: float) -> Tuple[Tensor, Tensor]:
    r"""Weighted ridge fit of ``values[i, j] ~ x_a[i]^T W x_b[j] + c``.

    The fit uses the scaled features ``x_a / sqrt(S)``, ``x_b / sqrt(P)`` and minimizes
    ``sum_ij weights[i, j] (values[i, j] - x~_a[i]^T W~ x~_b[j] - c)^2 + alpha ||W~||_F^2``
    (``c`` unpenalized), the objective of scikit-learn's ``Ridge(alpha)`` with
    ``sample_weight``; it returns ``W = W~ / sqrt(S P)``, the coefficients of the 0/1
    features in the values' units.

    Only the ``(S P + 1)``-square Gram matrix is formed, from the per-side masks:
    ``sum_ij w_ij (a_i a_i^T) (x) (b_j b_j^T)`` as one contraction.

    Args:
        keep_a: ``(m_a, S)`` 0/1 masks of side a; ``keep_b``: ``(m_b, P)``.
        values, weights: ``(m_a, m_b)``; weights non-negative with a positive sum.
        alpha: ridge strength, ``>= 0`` (0: weighted least squares).

    Returns:
        ``(W, c)``: float64 ``(S, P)`` and 0-d.

    Example:
        >>> keep_a = torch.tensor([[1, 0], [0, 1], [1, 1]])
        >>> keep_b = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])
        >>> truth = torch.arange(6, dtype=torch.float64).view(2, 3)
        >>> values = keep_a.double() @ truth @ keep_b.double().T + 0.5
        >>> W, c = fit_bilinear_ridge(keep_a, keep_b, values, torch.ones(3, 4), alpha=0.0)
        >>> torch.allclose(W, truth), round(float(c), 9)
        (True, 0.5)
    """
    a = keep_a.to(torch.float64)
    b = keep_b.to(torch.float64)
    w = weights.to(torch.float64)
    y = values.to(torch.float64)
    positions_a, positions_b = a.shape[1], b.shape[1]
    features = positions_a * positions_b
    root = float(features) ** 0.5
    outer_a = (a.unsqueeze(2) * a.unsqueeze(1)).reshape(a.shape[0], -1)  # (m_a, S*S)
    outer_b = (b.unsqueeze(2) * b.unsqueeze(1)).reshape(b.shape[0], -1)  # (m_b, P*P)
    block = (outer_a.T @ w @ outer_b).view(positions_a, positions_a, positions_b, positions_b)
    gram = torch.empty(features + 1, features + 1, dtype=torch.float64)
    gram[1:, 1:] = block.permute(0, 2, 1, 3).reshape(features, features) / features
    gram[1:, 1:].diagonal().add_(alpha)
    border = (a.T @ w @ b).reshape(-1) / root
    gram[0, 1:] = border
    gram[1:, 0] = border
    gram[0, 0] = w.sum()
    rhs = torch.empty(features + 1, dtype=torch.float64)
    rhs[0] = (w * y).sum()
    rhs[1:] = (a.T @ (w * y) @ b).reshape(-1) / root
    solution = spd_solve(gram, rhs, "the bilinear surrogate's normal equations")
    return solution[1:].view(positions_a, positions_b) / root, solution[0]


def fit_bilinear_sgd(
    keep_a: Tensor,
    keep_b: Tensor,
    values: Tensor,
    weights: Tensor,
    alpha: float,
    options: Dict[str, float],
    generator: torch.Generator,
) -> Tuple[Tensor, Tensor]:
    """Minibatch SGD with momentum on the same objective as the ridge solve (divided by
    the number of pairs), in the scaled features, from ``W~ = 0`` and ``c`` = the
    weighted mean value. Returns ``(W, c)`` in the 0/1 features' units."""
    a = keep_a.to(torch.float64) / math.sqrt(keep_a.shape[1])
    b = keep_b.to(torch.float64) / math.sqrt(keep_b.shape[1])
    y, w = values.to(torch.float64).reshape(-1), weights.to(torch.float64).reshape(-1)
    rows_b = b.shape[0]
    pairs = y.numel()
    matrix = torch.zeros(a.shape[1], b.shape[1], dtype=torch.float64)
    intercept = (w * y).sum() / w.sum()
    velocity_w, velocity_c = torch.zeros_like(matrix), torch.zeros_like(intercept)
    lr, momentum = float(options["lr"]), float(options["momentum"])
    batch_size = int(options["batch_size"])
    for _ in range(int(options["epochs"])):
        order = torch.randperm(pairs, generator=generator)
        for start in range(0, pairs, batch_size):
            index = order[start : start + batch_size]
            rows, columns = a[index // rows_b], b[index % rows_b]
            residual = w[index] * (((rows @ matrix) * columns).sum(-1) + intercept - y[index])
            grad_w = 2 * rows.T @ (residual.unsqueeze(1) * columns) / index.numel() + 2 * alpha / pairs * matrix
            grad_c = 2 * residual.mean()
            velocity_w = momentum * velocity_w - lr * grad_w
            velocity_c = momentum * velocity_c - lr * grad_c
            matrix = matrix + velocity_w
            intercept = intercept + velocity_c
    return matrix / math.sqrt(keep_a.shape[1] * keep_b.shape[1]), intercept
