"""Weighted Banzhaf interactions of caption and image positions (FIxLIP, Baniecki et al. 2025)."""

import numbers
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
from captum.attr import PerturbationAttribution
from captum.log import log_usage
from torch import Tensor

from captum_bilinear._utils.coalitions import (
    RandomState,
    as_generator,
    check_count,
    check_probability,
    identifying_weighted_coalitions,
    pair_indices,
    split_budget,
)
from captum_bilinear._core.base import DualLayerAttribution, LayerPair
from captum_bilinear._utils.integration import accumulation_dtype
from captum_bilinear._utils.kronecker_regression import fit_second_order_game
from captum_bilinear._utils.masking import masked_embeddings
from captum_bilinear._utils.model_state import evaluation_mode
from captum_bilinear._utils.pair_inputs import check_internal_batch_size
from captum_bilinear._utils.positions import num_positions

#: One side's players: None (every position), a sequence of position indices (negative
#: ones count from the end), or a 1-D integer Tensor of indices / bool Tensor mask.
PlayerSelection = Union[None, Sequence[int], Tensor]


@dataclass
class BanzhafTerms:
    """The fitted terms of the weighted Banzhaf interaction index of every example.

    The explanation of an example predicts the game value of a coalition ``M`` (the
    player positions kept; non-player positions are always kept) as
    ``intercept + sum_{i in M} first_i + sum_{pairs {i, j} in M} pair_ij``, with the
    pairs of ``cross`` (and ``intra_a``, ``intra_b`` when fitted, each unordered pair
    once: the matrices are symmetric with a zero diagonal). Non-player positions have
    zero terms.

    Attributes:
        intercept: ``(batch,)``.
        first_a: ``(batch, positions_a)``; ``first_b``: ``(batch, positions_b)``.
        cross: ``(batch, positions_a, positions_b)`` cross-modal pairs.
        intra_a: ``(batch, positions_a, positions_a)`` or None (``intra_modal=False``).
        intra_b: ``(batch, positions_b, positions_b)`` or None.
        p: the inclusion probability of the index.
        players_a: bool ``(positions_a,)``, the positions that were players;
            ``players_b`` likewise.

    Example:
        >>> terms = BanzhafTerms(intercept=torch.zeros(1), first_a=torch.ones(1, 2), first_b=torch.zeros(1, 3),
        ...     cross=torch.ones(1, 2, 3), intra_a=None, intra_b=None, p=0.5,
        ...     players_a=torch.ones(2, dtype=torch.bool), players_b=torch.ones(3, dtype=torch.bool))
        >>> float(terms.intercept + terms.first_a.sum() + terms.cross.sum())  # prediction for every player present
        8.0
    """

    intercept: Tensor
    first_a: Tensor
    first_b: Tensor
    cross: Tensor
    intra_a: Optional[Tensor]
    intra_b: Optional[Tensor]
    p: float
    players_a: Tensor
    players_b: Tensor

    def first_order_values(self) -> Tuple[Tensor, Tensor]:
        """Each player's first-order weighted Banzhaf value of the fitted 2-additive game
        (FIxLIP, Theorem 1): ``e_i + p * sum_j e_ij`` over every fitted pair containing
        ``i`` (cross-modal, plus intra-modal when fitted).

        Returns:
            ``(values_a, values_b)``: ``(batch, positions_a)`` and ``(batch, positions_b)``;
            zero at non-player positions.

        Example:
            >>> terms = BanzhafTerms(torch.zeros(1), torch.ones(1, 2), torch.zeros(1, 3),
            ...     torch.ones(1, 2, 3), None, None, 0.5, torch.ones(2, dtype=torch.bool),
            ...     torch.ones(3, dtype=torch.bool))
            >>> terms.first_order_values()
            (tensor([[2.5000, 2.5000]]), tensor([[1., 1., 1.]]))
        """
        values_a = self.first_a + self.p * self.cross.sum(2)
        values_b = self.first_b + self.p * self.cross.sum(1)
        if self.intra_a is not None:
            values_a = values_a + self.p * self.intra_a.sum(2)
        if self.intra_b is not None:
            values_b = values_b + self.p * self.intra_b.sum(2)
        return values_a, values_b


def _check_selection(value: Any, name: str) -> Optional[Tensor]:
    """Type checks of one side's players (before any model pass)."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        if value.dim() != 1 or value.is_floating_point() or value.is_complex():
            raise TypeError(
                f"{name}: expected a 1-D integer Tensor of positions or a 1-D bool mask, got "
                f"{value.dtype} of shape {tuple(value.shape)}"
            )
        return value.detach().cpu()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected None, a sequence of position indices or a 1-D Tensor, got {type(value).__name__}")
    for index in value:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"{name}: expected int position indices, got {index!r}")
    return torch.tensor([int(index) for index in value], dtype=torch.long)


def _check_players(players: Any) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    if players is None:
        return None, None
    if not isinstance(players, (tuple, list)) or len(players) != 2:
        raise TypeError(
            "players: expected None or a pair (indices_a, indices_b), each None (every position) or "
            f"the positions that are players, e.g. (range(1, 11), None); got {type(players).__name__}"
        )
    return _check_selection(players[0], "players[0]"), _check_selection(players[1], "players[1]")


def _player_mask(selection: Optional[Tensor], positions: int, name: str) -> Tensor:
    """The bool ``(positions,)`` mask of a checked selection."""
    if selection is None:
        return torch.ones(positions, dtype=torch.bool)
    if selection.dtype == torch.bool:
        if selection.numel() != positions:
            raise ValueError(f"{name}: a bool mask must have one entry per position ({positions}), got {selection.numel()}")
        mask = selection.clone()
    else:
        out_of_range = (selection < -positions) | (selection >= positions)
        if bool(out_of_range.any()):
            raise ValueError(
                f"{name}: position {int(selection[out_of_range][0])} is out of range for a layer with {positions} positions"
            )
        indices = selection % positions
        if indices.unique().numel() != indices.numel():
            raise ValueError(f"{name}: the positions {indices.tolist()} contain duplicates")
        mask = torch.zeros(positions, dtype=torch.bool)
        mask[indices] = True
    if not bool(mask.any()):
        raise ValueError(f"{name}: select at least one player position")
    return mask


def _basis_size(players: int, intra_modal: bool) -> int:
    """One side's basis functions: the constant, one per player, one per intra-modal pair."""
    return 1 + players + (players * (players - 1) // 2 if intra_modal else 0)


def _symmetric(pairs: Tensor, players: Tensor, positions: int) -> Tensor:
    """``(positions, positions)`` symmetric matrix of the pair terms of ``players``."""
    first, second = pair_indices(players.numel())
    matrix = torch.zeros(positions, positions, dtype=pairs.dtype)
    matrix[players[first], players[second]] = pairs
    matrix[players[second], players[first]] = pairs
    return matrix


class WeightedBanzhafInteractions(DualLayerAttribution, PerturbationAttribution):
    r"""Cross-modal interactions as the weighted Banzhaf interaction index (FIxLIP:
    Baniecki et al., "Explaining Similarity in Vision-Language Encoders with Weighted
    Banzhaf Interactions", 2025).

    The game ``nu(M)`` is the similarity when only the player positions in ``M`` are
    present: every other player position takes the baseline's activation at the layer
    (non-player positions are always present). Coalitions of each side include each
    player with probability ``p``. The index fits intercept, first-order and
    cross-modal pair terms (with ``intra_modal`` also the pairs within each side) by
    weighted least squares under the measure ``p^|M| (1-p)^(n-|M|)``; at ``p = 0.5``
    with every coalition evaluated this is the Faith-Banzhaf interaction index (FBII).

    Cross-modal sampling: ``m_a`` coalitions of side a and ``m_b`` of side b give all
    ``m_a * m_b`` game values from ``m_a + m_b`` encoder passes of the layers above the
    attributed ones. ``budget`` bounds the number of game values ``m_a * m_b``; it is
    split in proportion to the sides' numbers of basis functions (``1 + n`` per side,
    ``+ n(n-1)/2`` with intra-modal pairs), each side needing at least that many
    coalitions. Per side, coalition sizes the share covers are enumerated (the border
    trick: a size is enumerated when its expected number of draws reaches its number of
    coalitions; those coalitions carry their exact probability as weight), the rest are
    sampled from the remaining sizes and share the remaining mass; a side whose power
    set fits its share is enumerated completely.

    The measure factorizes over the sides and the design is a Kronecker product of the
    per-side bases, so the solve needs only per-side Gram matrices (see
    :func:`~captum_bilinear._utils.kronecker_regression.fit_second_order_game`). The
    cross-modal pairs do not depend on whether intra-modal pairs are fitted.

    Args:
        model: a HuggingFace ``CLIPModel`` / ``SiglipModel`` or a :class:`DualEncoder`.
        layer: ``(layer_a, layer_b)``, a module in each encoder.
        p: inclusion probability in ``(0, 1)`` (0.5: Faith-Banzhaf).

    Example:
        >>> import torch
        >>> from transformers import CLIPConfig, CLIPModel
        >>> from captum_bilinear import WeightedBanzhafInteractions
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = CLIPModel(CLIPConfig(text_config=small, projection_dim=16,
        ...                   vision_config=dict(small, image_size=32, patch_size=8))).eval()
        >>> layer = (model.text_model.encoder.layers[0], model.vision_model.encoder.layers[0])
        >>> inputs = (torch.tensor([[49406, 320, 1125, 49407]]), torch.randn(1, 3, 32, 32))
        >>> fixlip = WeightedBanzhafInteractions(model, layer, p=0.5)
        >>> terms = fixlip.attribute_terms(inputs, budget=256, players=([1, 2], range(1, 17)), random_state=0)
        >>> terms.cross.shape, terms.first_a.shape  # zeros outside the players (BOS, EOS, CLS)
        (torch.Size([1, 4, 17]), torch.Size([1, 4]))
        >>> values_a, values_b = terms.first_order_values()
    """

    def __init__(self, model: Any, layer: Any, p: float = 0.5) -> None:
        self.p = check_probability(p, "p")
        DualLayerAttribution.__init__(self, model, layer)

    @log_usage()
    @staticmethod
    def minimum_budget(players_a: int, players_b: int, intra_modal: bool = False) -> int:
        """The smallest ``budget`` that identifies the terms for ``players_a`` x
        ``players_b`` players: each side needs one coalition per basis function
        (intercept, first-order, and intra-modal pairs when fitted).

        Example:
            >>> WeightedBanzhafInteractions.minimum_budget(12, 49)
            650
        """
        return _basis_size(players_a, intra_modal) * _basis_size(players_b, intra_modal)

    def attribute(  # type: ignore[override]
        self,
        inputs: Tuple[Any, Any],
        baselines: Optional[Tuple[Any, Any]] = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        budget: int = 2**12,
        intra_modal: bool = False,
        random_state: RandomState = None,
        players: Optional[Tuple[PlayerSelection, PlayerSelection]] = None,
        internal_batch_size: Optional[int] = None,
        attribute_to_layer_input: bool = False,
    ) -> Tensor:
        """The cross-modal pair terms of every example (``attribute_terms(...).cross``).

        Takes the arguments of :meth:`attribute_terms`. The cross pairs do not depend on
        ``intra_modal`` (for the same coalitions), which only raises the budget needed.

        Returns:
            ``(batch, positions_a, positions_b)``, zero at non-player positions, in the
            similarity's units: with the other terms of :meth:`attribute_terms` they
            predict the similarity of any coalition.
        """
        return self.attribute_terms(
            inputs, baselines, additional_forward_args=additional_forward_args, budget=budget,
            intra_modal=intra_modal, random_state=random_state, players=players,
            internal_batch_size=internal_batch_size, attribute_to_layer_input=attribute_to_layer_input,
        ).cross

    @log_usage()
    def attribute_terms(
        self,
        inputs: Tuple[Any, Any],
        baselines: Optional[Tuple[Any, Any]] = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        budget: int = 2**12,
        intra_modal: bool = False,
        random_state: RandomState = None,
        players: Optional[Tuple[PlayerSelection, PlayerSelection]] = None,
        internal_batch_size: Optional[int] = None,
        attribute_to_layer_input: bool = False,
    ) -> BanzhafTerms:
        """All fitted terms of every example.

        Args:
            inputs: ``(inputs_a, inputs_b)``, e.g. ``(input_ids, pixel_values)``.
            baselines: ``(baselines_a, baselines_b)``; an absent player takes the
                baseline's activation at the layer. Either may be None for the default
                reference (HF CLIP: ``[BOS, PAD..., EOS]`` captions and a black image).
            additional_forward_args: ``(extra_a, extra_b)``, e.g. ``((attention_mask,), None)``.
            budget: the maximal number of game values ``m_a * m_b`` per example (from
                ``m_a + m_b`` encoder passes). It must be at least ``K_a * K_b`` with
                ``K = 1 + n`` players' basis functions per side (``+ n(n-1)/2`` with
                ``intra_modal``): 663 for 12 x 50 players, cross-modal terms only.
            intra_modal: also fit the pairs within each side (needs a much larger budget:
                ``K`` grows quadratically in the side's players).
            random_state: int seed, ``torch.Generator``, or None (not reproducible).
            players: ``(indices_a, indices_b)``: which positions are players, each None
                (every position), a sequence of indices (negative ones from the end),
                a 1-D integer Tensor of indices, or a 1-D bool mask; the same for every
                example. FIxLIP drops BOS / EOS / CLS this way.
            internal_batch_size: at most this many masked activations per encoder pass.
            attribute_to_layer_input: attribute to the layers' inputs instead of outputs.

        Returns:
            :class:`BanzhafTerms` (float32 for float32 / half models, else the model's dtype).
        """
        budget = check_count(budget, "budget")
        if not isinstance(intra_modal, bool):
            raise TypeError(f"intra_modal: expected a bool, got {type(intra_modal).__name__}")
        selection_a, selection_b = _check_players(players)
        check_internal_batch_size(internal_batch_size)
        generator = as_generator(random_state)
        side_a, side_b = self._prepare(inputs, baselines, additional_forward_args)
        fitted: List[Tuple[Tensor, ...]] = []
        masks: Tuple[Tensor, Tensor] = (torch.zeros(0), torch.zeros(0))
        with evaluation_mode(self.dual_encoder):
            for pair in self._layer_pairs(side_a, side_b, attribute_to_layer_input):
                masks = (
                    _player_mask(selection_a, num_positions(pair.input_a), "players[0]"),
                    _player_mask(selection_b, num_positions(pair.input_b), "players[1]"),
                )
                fitted.append(self._attribute_pair(pair, masks, budget, intra_modal, generator, internal_batch_size))
        columns = [torch.stack(column) for column in zip(*fitted)]
        intra_a, intra_b = (columns[4], columns[5]) if intra_modal else (None, None)
        return BanzhafTerms(columns[0], columns[1], columns[2], columns[3], intra_a, intra_b, self.p, masks[0], masks[1])

    def _attribute_pair(
        self,
        pair: LayerPair,
        players: Tuple[Tensor, Tensor],
        budget: int,
        intra_modal: bool,
        generator: torch.Generator,
        internal_batch_size: Optional[int],
    ) -> Tuple[Tensor, ...]:
        index_a, index_b = players[0].nonzero().squeeze(1), players[1].nonzero().squeeze(1)
        n_a, n_b = index_a.numel(), index_b.numel()
        basis_a, basis_b = _basis_size(n_a, intra_modal), _basis_size(n_b, intra_modal)
        what = (
            f"the intercept, first-order, cross-modal{' and intra-modal' if intra_modal else ''} pair terms "
            f"of {n_a} x {n_b} players"
        )
        rows_a, rows_b = split_budget(budget, basis_a, basis_b, n_a, n_b, what)
        design_a, features_a = identifying_weighted_coalitions(n_a, rows_a, self.p, generator, intra_modal)
        design_b, features_b = identifying_weighted_coalitions(n_b, rows_b, self.p, generator, intra_modal)
        positions_a, positions_b = players[0].numel(), players[1].numel()
        keep_a = torch.ones(design_a.masks.shape[0], positions_a, dtype=torch.bool)
        keep_a[:, index_a] = design_a.masks
        keep_b = torch.ones(design_b.masks.shape[0], positions_b, dtype=torch.bool)
        keep_b[:, index_b] = design_b.masks
        with torch.no_grad():
            embedded_a = masked_embeddings(pair.side_a, pair.input_a, pair.reference_a, keep_a, internal_batch_size)
            embedded_b = masked_embeddings(pair.side_b, pair.input_b, pair.reference_b, keep_b, internal_batch_size)
        # The fit runs on the CPU in float64 whatever the model's device.
        values = (self.dual_encoder.scale * (embedded_a @ embedded_b.T)).to("cpu", torch.float64)
        fit = fit_second_order_game(
            features_a, design_a.weights, features_b, design_b.weights, values, n_a, n_b, intra_modal
        )
        dtype = accumulation_dtype(embedded_a.dtype)
        first_a = torch.zeros(positions_a, dtype=torch.float64)
        first_a[index_a] = fit.first_a
        first_b = torch.zeros(positions_b, dtype=torch.float64)
        first_b[index_b] = fit.first_b
        cross = torch.zeros(positions_a, positions_b, dtype=torch.float64)
        cross[index_a.unsqueeze(1), index_b.unsqueeze(0)] = fit.cross
        result = [fit.intercept, first_a, first_b, cross]
        if intra_modal:
            assert fit.intra_a is not None and fit.intra_b is not None
            result += [_symmetric(fit.intra_a, index_a, positions_a), _symmetric(fit.intra_b, index_b, positions_b)]
        return tuple(term.to(device=embedded_a.device, dtype=dtype) for term in result)
