"""Gauss-Kronrod rules on ``[0, 1]``, computed here from their definition.

The Kronrod extension of the ``n``-point Gauss-Legendre rule adds the ``n + 1`` roots of
the Stieltjes polynomial ``E_{n+1}`` (the polynomial orthogonal to every polynomial of
degree ``<= n`` under the weight ``P_n(x)`` on ``[-1, 1]``); the ``2n + 1`` nodes
together integrate every polynomial of degree ``<= 3n + 1`` exactly, and the Gauss
nodes' values are reused: the difference between the two rules estimates the error of
the coarser one at no extra cost. Everything is solved in float64 in the Legendre basis
(well conditioned at these sizes); the tests check the degrees of exactness.
"""

from functools import lru_cache
from typing import Tuple

import numpy as np
from numpy.polynomial import legendre


def _legendre_values(degree: int, x: np.ndarray) -> np.ndarray:
    """``(degree + 1, len(x))``: ``P_0(x) .. P_degree(x)``."""
    return np.stack([legendre.legval(x, np.eye(degree + 1)[k]) for k in range(degree + 1)])


@lru_cache(maxsize=None)
def kronrod_rule(n: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``(2n + 1)``-point Gauss-Kronrod rule extending ``n``-point Gauss-Legendre, on ``[0, 1]``.

    Returns:
        ``(nodes, kronrod_weights, gauss_weights)``, each of length ``2n + 1``, nodes in
        increasing order; ``gauss_weights`` is 0 at the Kronrod nodes, so that
        ``weights @ f(nodes)`` gives either rule from the same values.

    Example:
        >>> nodes, kronrod, gauss = kronrod_rule(7)
        >>> len(nodes), round(float(kronrod.sum()), 12), round(float(gauss.sum()), 12)
        (15, 1.0, 1.0)
        >>> round(float(kronrod @ nodes ** 22), 12) == round(1 / 23, 12)  # degree 3n + 1 exact
        True
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}")
    gauss_x, gauss_w = legendre.leggauss(n)
    # Enough Gauss points to integrate P_n * P_k * P_j (degree <= 3n + 1) exactly.
    quad_x, quad_w = legendre.leggauss(2 * n + 2)
    p_n = _legendre_values(n, quad_x)[n]
    basis = _legendre_values(n + 1, quad_x)  # P_0 .. P_{n+1}
    # moments[j, k] = integral of P_n P_k P_j for j <= n, k <= n + 1
    moments = np.einsum("q,jq,kq->jk", quad_w * p_n, basis[: n + 1], basis)
    coefficients = np.linalg.solve(moments[:, : n + 1], -moments[:, n + 1])
    stieltjes = np.append(coefficients, 1.0)
    kronrod_x = np.sort(np.real(legendre.legroots(stieltjes)))
    nodes = np.sort(np.concatenate([gauss_x, kronrod_x]))
    # Interpolatory weights: exact for P_0 .. P_{2n}; the theory makes them exact to 3n + 1.
    values = _legendre_values(2 * n, nodes)
    target = np.zeros(2 * n + 1)
    target[0] = 2.0
    weights = np.linalg.solve(values, target)
    gauss = np.zeros_like(weights)
    for x, w in zip(gauss_x, gauss_w):
        gauss[np.argmin(np.abs(nodes - x))] = w
    return (nodes + 1) / 2, weights / 2, gauss / 2
