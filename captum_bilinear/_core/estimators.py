"""Estimators of a cross-modal game's terms, apart from any model (shapiq's separation
of game, estimator and result): what InteractionLIME and WeightedBanzhafInteractions fit.

Both sample each side's coalitions separately and read all ``m_a * m_b`` pairs' values
through :func:`captum_bilinear.games.cross_values` (``m_a + m_b`` encoder passes for a
dual encoder). :func:`terms_of_fits` scatters the fits of a batch's examples, made over
their players, into :class:`~captum_bilinear.terms.InteractionTerms` over the positions.
"""

import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from captum_bilinear._utils.coalitions import (
    identifying_bernoulli_masks,
    identifying_weighted_coalitions,
    minimum_cross_modal_samples,
    pair_indices,
    split_budget,
    split_samples,
)
from captum_bilinear._utils.kronecker_regression import fit_bilinear_ridge, fit_bilinear_sgd, fit_second_order_game
from captum_bilinear.games import check_cross_modal_game, cross_values
from captum_bilinear.terms import InteractionTerms

#: InteractionLIME's paper draws 1000 masked pairs; FIxLIP's default budget is 2^12.
LIME_SAMPLES = 1000
BANZHAF_BUDGET = 2**12


@dataclass
class GameFit:
    """Terms of one example's game, over its players (float64, CPU)."""

    intercept: Tensor  #: 0-d
    cross: Tensor  #: (n_a, n_b)
    first_a: Optional[Tensor] = None  #: (n_a,)
    first_b: Optional[Tensor] = None  #: (n_b,)
    intra_a: Optional[Tensor] = None  #: (n_a, n_a) symmetric, zero diagonal
    intra_b: Optional[Tensor] = None
    samples: int = 0  #: game values used


def cosine_to(embeddings: Tensor, reference: Tensor) -> Tensor:
    """float64 ``(m,)`` cosines of the rows of ``embeddings`` to ``reference`` ``(1, D)``;
    0 (not NaN) for a zero or non-finite row.

    Example:
        >>> cosine_to(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[2.0, 0.0]]))
        tensor([1., 0.], dtype=torch.float64)
    """
    rows = embeddings.to(torch.float64)
    target = reference.to(torch.float64).reshape(1, -1)
    tiny = torch.finfo(torch.float64).tiny
    norms = rows.norm(dim=-1).clamp_min(tiny) * target.norm(dim=-1).clamp_min(tiny)
    return torch.nan_to_num((rows @ target.T).squeeze(1) / norms, nan=0.0, posinf=0.0, neginf=0.0)


def lime_samples(n_samples: Optional[int], players_a: int, players_b: int) -> int:
    """``n_samples``, or for None the paper's 1000 raised to what identifies the surrogate.

    Example:
        >>> lime_samples(None, 12, 50), lime_samples(None, 40, 50), lime_samples(2000, 3, 4)
        (1000, 2091, 2000)
    """
    if n_samples is not None:
        return n_samples
    return max(LIME_SAMPLES, minimum_cross_modal_samples(players_a, players_b))


def _lime_values_and_weights(game: Any, keep_a: Tensor, keep_b: Tensor) -> Tuple[Tensor, Tensor]:
    """The pairs' values and the paper's weights: the mean of the two masked embeddings'
    cosines to the unmasked ones, clamped at 0 (a game that cannot give embeddings: 1)."""
    if not hasattr(game, "embeddings"):
        return cross_values(game, keep_a, keep_b), torch.ones(keep_a.shape[0], keep_b.shape[0], dtype=torch.float64)
    everything_a = torch.ones(1, keep_a.shape[1], dtype=torch.bool)
    everything_b = torch.ones(1, keep_b.shape[1], dtype=torch.bool)
    embedded_a, embedded_b = game.embeddings(torch.cat([everything_a, keep_a]), torch.cat([everything_b, keep_b]))
    (full_a, embedded_a), (full_b, embedded_b) = embedded_a.split([1, keep_a.shape[0]]), embedded_b.split([1, keep_b.shape[0]])
    values = game.values_of(embedded_a, embedded_b)
    if not bool(torch.isfinite(values).all()):
        raise ValueError("game: returned NaN or infinite values")
    cosines_a, cosines_b = cosine_to(embedded_a, full_a).cpu(), cosine_to(embedded_b, full_b).cpu()
    weights = (0.5 * (cosines_a.unsqueeze(1) + cosines_b.unsqueeze(0))).clamp_min(0)
    if not bool(weights.sum() > 0):
        warnings.warn(
            "InteractionLIME: every masked pair's embeddings point away from the unmasked ones "
            "(all sample weights are 0); fitting with equal weights",
            RuntimeWarning,
            stacklevel=4,
        )
        weights = torch.ones_like(weights)
    return values, weights


def fit_lime_surrogate(
    game: Any, n_samples: int, p: float, alpha: float, solver: str, options: Dict[str, float],
    generator: torch.Generator,
) -> GameFit:
    """InteractionLIME's bilinear surrogate ``phi(x_a, x_b) = x_a^T W x_b + c`` of a
    cross-modal game, fitted to ``m_a * m_b >= n_samples`` masked pairs (each player kept
    with probability ``p``); see :class:`~captum_bilinear.InteractionLIME`."""
    n_a, n_b = check_cross_modal_game(game)
    rows_a, rows_b = split_samples(n_samples, n_a, n_b)
    keep_a = identifying_bernoulli_masks(rows_a, n_a, p, generator)
    keep_b = identifying_bernoulli_masks(rows_b, n_b, p, generator)
    values, weights = _lime_values_and_weights(game, keep_a, keep_b)
    if solver == "ridge":
        matrix, intercept = fit_bilinear_ridge(keep_a, keep_b, values, weights, alpha)
    else:
        matrix, intercept = fit_bilinear_sgd(keep_a, keep_b, values, weights, alpha, options, generator)
    return GameFit(intercept, matrix, samples=rows_a * rows_b)


def basis_size(players: int, intra_modal: bool) -> int:
    """One side's basis functions: the constant, one per player, one per intra-modal pair."""
    return 1 + players + (players * (players - 1) // 2 if intra_modal else 0)


def banzhaf_budget(budget: Optional[int], players_a: int, players_b: int, intra_modal: bool) -> int:
    """``budget``, or for None FIxLIP's 2^12 raised to what identifies the terms.

    Example:
        >>> banzhaf_budget(None, 12, 49, False), banzhaf_budget(None, 40, 196, False)
        (4096, 8077)
    """
    if budget is not None:
        return budget
    return max(BANZHAF_BUDGET, basis_size(players_a, intra_modal) * basis_size(players_b, intra_modal))


def _symmetric(pairs: Tensor, players: int) -> Tensor:
    first, second = pair_indices(players)
    matrix = torch.zeros(players, players, dtype=pairs.dtype)
    matrix[first, second] = pairs
    matrix[second, first] = pairs
    return matrix


def fit_weighted_banzhaf(game: Any, budget: int, p: float, intra_modal: bool, generator: torch.Generator) -> GameFit:
    """The weighted Banzhaf interaction index (FIxLIP) of a cross-modal game: intercept,
    first-order and cross-modal pair terms (and intra-modal pairs with ``intra_modal``)
    fitted by weighted least squares to ``m_a * m_b <= budget`` game values; see
    :class:`~captum_bilinear.WeightedBanzhafInteractions`."""
    n_a, n_b = check_cross_modal_game(game)
    basis_a, basis_b = basis_size(n_a, intra_modal), basis_size(n_b, intra_modal)
    what = (
        f"the intercept, first-order, cross-modal{' and intra-modal' if intra_modal else ''} pair terms "
        f"of {n_a} x {n_b} players"
    )
    rows_a, rows_b = split_budget(budget, basis_a, basis_b, n_a, n_b, what)
    design_a, features_a = identifying_weighted_coalitions(n_a, rows_a, p, generator, intra_modal)
    design_b, features_b = identifying_weighted_coalitions(n_b, rows_b, p, generator, intra_modal)
    values = cross_values(game, design_a.masks, design_b.masks)
    fit = fit_second_order_game(features_a, design_a.weights, features_b, design_b.weights, values, n_a, n_b,
                                intra_modal)
    intra_a = _symmetric(fit.intra_a, n_a) if fit.intra_a is not None else None
    intra_b = _symmetric(fit.intra_b, n_b) if fit.intra_b is not None else None
    return GameFit(fit.intercept, fit.cross, fit.first_a, fit.first_b, intra_a, intra_b,
                   samples=design_a.masks.shape[0] * design_b.masks.shape[0])


def _scatter(values: Optional[Tensor], players: Sequence[Tensor], shape: Tuple[int, ...]) -> Tensor:
    """``values`` over the players placed into a zero tensor over the positions."""
    full = torch.zeros(shape, dtype=torch.float64)
    if values is None:
        return full
    index = [mask.nonzero().squeeze(1) for mask in players]
    if len(index) == 1:
        full[index[0]] = values
    else:
        full[index[0].unsqueeze(1), index[1].unsqueeze(0)] = values
    return full


def terms_of_fits(
    fits: List[GameFit], players_a: List[Tensor], players_b: List[Tensor], dtype: torch.dtype, device: Any,
    **description: Any,
) -> InteractionTerms:
    """One :class:`InteractionTerms` of a batch's fits (``players_a[i]``: bool
    ``(positions_a,)`` of example ``i``'s players, the fit's order), zero at non-players."""
    positions_a, positions_b = players_a[0].numel(), players_b[0].numel()
    columns: Dict[str, List[Tensor]] = {name: [] for name in ("intercept", "first_a", "first_b", "cross",
                                                               "intra_a", "intra_b")}
    for fit, mask_a, mask_b in zip(fits, players_a, players_b):
        columns["intercept"].append(fit.intercept.reshape(()).to(torch.float64))
        columns["first_a"].append(_scatter(fit.first_a, [mask_a], (positions_a,)))
        columns["first_b"].append(_scatter(fit.first_b, [mask_b], (positions_b,)))
        columns["cross"].append(_scatter(fit.cross, [mask_a, mask_b], (positions_a, positions_b)))
        if fit.intra_a is not None and fit.intra_b is not None:
            columns["intra_a"].append(_scatter(fit.intra_a, [mask_a, mask_a], (positions_a, positions_a)))
            columns["intra_b"].append(_scatter(fit.intra_b, [mask_b, mask_b], (positions_b, positions_b)))

    def stacked(name: str) -> Tensor:
        return torch.stack(columns[name]).to(device=device, dtype=dtype)

    def stacked_if_fitted(name: str) -> Optional[Tensor]:  # the intra-modal terms, when the fits have them
        return stacked(name) if columns[name] else None

    settings = dict(description.pop("settings", {}))
    settings["samples"] = [fit.samples for fit in fits]
    return InteractionTerms(
        intercept=stacked("intercept"), first_a=stacked("first_a"), first_b=stacked("first_b"),
        cross=stacked("cross"), intra_a=stacked_if_fitted("intra_a"), intra_b=stacked_if_fitted("intra_b"),
        players_a=torch.stack(players_a).to(device), players_b=torch.stack(players_b).to(device),
        settings=settings, has_first_order=fits[0].first_a is not None, **description,
    )


def check_penalty(alpha: Any) -> float:
    """A ridge strength: a finite number >= 0."""
    import numbers

    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha: expected a number >= 0, got {alpha!r}")
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha: expected a finite number >= 0, got {alpha}")
    return alpha


def describe_random_state(random_state: Any) -> Any:
    """A random state as results can record it (a seed, None, or the type's name)."""
    return random_state if random_state is None or isinstance(random_state, int) else type(random_state).__name__
