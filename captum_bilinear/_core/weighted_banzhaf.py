"""Weighted Banzhaf interactions of caption and image positions (FIxLIP, Baniecki et al. 2025)."""

from typing import Any, Optional, Tuple

import torch
from captum.attr import PerturbationAttribution
from captum.log import log_usage
from torch import Tensor

from captum_bilinear._core.base import DualLayerAttribution
from captum_bilinear._core.estimators import (
    banzhaf_budget,
    basis_size,
    describe_random_state,
    fit_weighted_banzhaf,
    terms_of_fits,
)
from captum_bilinear._utils.checks import check_int, check_probability
from captum_bilinear._utils.coalitions import ExampleStreams, RandomState
from captum_bilinear._utils.integration import accumulation_dtype
from captum_bilinear._utils.model_state import evaluation_mode
from captum_bilinear._utils.pair_inputs import check_internal_batch_size
from captum_bilinear._utils.groups import FeatureMask
from captum_bilinear._utils.players import PlayerSelection, check_masking_groups, check_players
from captum_bilinear.games import check_cross_modal_game
from captum_bilinear.terms import InteractionTerms


class WeightedBanzhafInteractions(DualLayerAttribution, PerturbationAttribution):
    r"""Cross-modal interactions as the weighted Banzhaf interaction index (FIxLIP:
    Baniecki et al., "Explaining Similarity in Vision-Language Encoders with Weighted
    Banzhaf Interactions", 2025).

    The game ``nu(M)`` is the similarity when only the player positions in ``M`` are
    present: every other player position takes the baseline's activation at the layer
    (non-player positions are always present; padding is never a player). With
    ``feature_mask`` the players are groups of positions, each masked as a whole. Each example
    of a batch gets its own random stream from ``random_state``, so its result does not
    depend on the batch it came in; :meth:`attribute_game` fits the index of any
    cross-modal game of your own (:mod:`captum_bilinear.games`). Coalitions of each side include each
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

        Groups as players (``feature_mask``): the two words as one player, each row of
        4 patches as one (CLS and the special tokens left out, always present):

        >>> rows = torch.cat([torch.tensor([-1]), torch.arange(16) // 4])
        >>> fixlip.attribute(inputs, feature_mask=(torch.tensor([-1, 0, 0, -1]), rows), random_state=0).shape
        torch.Size([1, 1, 4])
    """

    def __init__(self, model: Any, layer: Any, p: float = 0.5) -> None:
        self.p = check_probability(p, "p")
        DualLayerAttribution.__init__(self, model, layer)

    @staticmethod
    def minimum_budget(players_a: int, players_b: int, intra_modal: bool = False) -> int:
        """The smallest ``budget`` that identifies the terms for ``players_a`` x
        ``players_b`` players: each side needs one coalition per basis function
        (intercept, first-order, and intra-modal pairs when fitted).

        Example:
            >>> WeightedBanzhafInteractions.minimum_budget(12, 49)
            650
        """
        return basis_size(players_a, intra_modal) * basis_size(players_b, intra_modal)

    @log_usage()
    def attribute(
        self,
        inputs: Tuple[Any, Any],
        baselines: Optional[Tuple[Any, Any]] = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        feature_mask: FeatureMask = None,
        budget: Optional[int] = None,
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
            predict the similarity of any coalition. ``(batch, G_a, G_b)`` with
            ``feature_mask``.
        """
        return self.attribute_terms(
            inputs, baselines, additional_forward_args=additional_forward_args, feature_mask=feature_mask,
            budget=budget, intra_modal=intra_modal, random_state=random_state, players=players,
            internal_batch_size=internal_batch_size, attribute_to_layer_input=attribute_to_layer_input,
        ).cross

    @log_usage()
    def attribute_terms(
        self,
        inputs: Tuple[Any, Any],
        baselines: Optional[Tuple[Any, Any]] = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        feature_mask: FeatureMask = None,
        budget: Optional[int] = None,
        intra_modal: bool = False,
        random_state: RandomState = None,
        players: Optional[Tuple[PlayerSelection, PlayerSelection]] = None,
        internal_batch_size: Optional[int] = None,
        attribute_to_layer_input: bool = False,
    ) -> InteractionTerms:
        """All fitted terms of every example.

        Args:
            inputs: ``(inputs_a, inputs_b)``, e.g. ``(input_ids, pixel_values)``.
            baselines: ``(baselines_a, baselines_b)``; an absent player takes the
                baseline's activation at the layer. Either may be None for the default
                reference (HF CLIP: ``[BOS, PAD..., EOS]`` captions and a black image).
            additional_forward_args: ``(extra_a, extra_b)``, e.g. ``((attention_mask,), None)``.
            feature_mask: ``(mask_a, mask_b)``, Captum's ``feature_mask`` for layer
                positions: each side None (every position its own player) or an integer
                Tensor ``(batch, positions)`` / ``(positions,)`` giving each position of that
                side's layer a group id ``0 .. G-1`` (``-1``: left out). Each group is one
                player: its positions take the baseline's activation together when it is
                absent; left-out positions are no player (always present), and padding is
                never part of a player (a group of padding only gets zero terms and is
                no player, ``players_a`` False). The terms are then per group (``cross``
                ``(batch, G_a, G_b)``, ``first_a`` ``(batch, G_a)``, ...) and ``budget``
                counts the groups as players. Float group weights (which
                :class:`~captum_bilinear.BilinearIntegratedInteractions` takes) cannot be
                masked and are refused; so is ``feature_mask`` together with ``players``.
            budget: the maximal number of game values ``m_a * m_b`` per example (from
                ``m_a + m_b`` encoder passes). It must be at least ``K_a * K_b`` with
                ``K = 1 + n`` players' basis functions per side (``+ n(n-1)/2`` with
                ``intra_modal``): 663 for 12 x 50 players, cross-modal terms only. None:
                FIxLIP's 2^12, raised to that minimum where it is larger.
            intra_modal: also fit the pairs within each side (needs a much larger budget:
                ``K`` grows quadratically in the side's players).
            random_state: int seed, ``torch.Generator``, or None (not reproducible); every
                example's stream starts from it.
            players: ``(indices_a, indices_b)``: which positions are players, each None
                (every position), a sequence of indices (negative ones from the end),
                a 1-D integer Tensor of indices, or a 1-D bool mask; the same for every
                example, without the positions that carry no input (padding). FIxLIP drops
                BOS / EOS / CLS this way. Not with ``feature_mask`` (where id ``-1`` drops
                a position).
            internal_batch_size: at most this many masked activations per encoder pass.
            attribute_to_layer_input: attribute to the layers' inputs instead of outputs.

        Returns:
            :class:`~captum_bilinear.InteractionTerms` (float32 for float32 / half models,
            else the model's dtype; ``settings["p"]`` the index's inclusion probability).
        """
        budget = None if budget is None else check_int(budget, "budget", minimum=1)
        if not isinstance(intra_modal, bool):
            raise TypeError(f"intra_modal: expected a bool, got {type(intra_modal).__name__}")
        selection_a, selection_b = check_players(players)
        check_internal_batch_size(internal_batch_size)
        streams = ExampleStreams(random_state)
        side_a, side_b = self._prepare(inputs, baselines, additional_forward_args)
        groups = check_masking_groups(feature_mask, players, side_a.batch_size)
        fits, masks_a, masks_b = [], [], []
        dtype, device = torch.float32, None
        with evaluation_mode(self.dual_encoder):
            for game, mask_a, mask_b, activation in self._player_games(
                    side_a, side_b, (selection_a, selection_b), attribute_to_layer_input, internal_batch_size,
                    groups):
                masks_a.append(mask_a)
                masks_b.append(mask_b)
                example_budget = banzhaf_budget(budget, game.n_players_a, game.n_players_b, intra_modal)
                fits.append(fit_weighted_banzhaf(game, example_budget, self.p, intra_modal, streams.next()))
                dtype, device = accumulation_dtype(activation.dtype), activation.device
        streams.close()
        return terms_of_fits(
            fits, masks_a, masks_b, dtype, device, method=type(self).__name__, layers=self.layer_names(),
            settings=dict(p=self.p, budget=budget, intra_modal=intra_modal, random_state=describe_random_state(random_state),
                          **({} if feature_mask is None else {"feature_mask": True})),
        )

    @staticmethod
    def attribute_game(
        game: Any,
        *,
        p: float = 0.5,
        budget: Optional[int] = None,
        intra_modal: bool = False,
        random_state: RandomState = None,
    ) -> InteractionTerms:
        """The weighted Banzhaf index of any cross-modal game of your own
        (:mod:`captum_bilinear.games`); players are the game's, side a's first.

        Args:
            game: a cross-modal game (``n_players_a``, ``n_players_b``, ``n_players``, callable;
                ``cross_values`` when it can give all pairs cheaply).
            p: the inclusion probability (the constructor's ``p`` for models).
            budget, intra_modal, random_state: as in :meth:`attribute_terms`.

        Returns:
            :class:`~captum_bilinear.InteractionTerms` of batch 1 over the game's players.

        Example:
            >>> class Game:  # a 2-additive game: its index is itself
            ...     n_players_a, n_players_b, n_players = 2, 2, 4
            ...     def __call__(self, M):
            ...         M = M.double()
            ...         return 1 + M[:, 0] - 2 * M[:, 3] + 3 * M[:, 0] * M[:, 2]
            >>> terms = WeightedBanzhafInteractions.attribute_game(Game(), budget=16)
            >>> round(float(terms.intercept[0]), 6), terms.first_b[0].tolist(), terms.cross[0, 0].tolist()
            (1.0, [0.0, -2.0], [3.0, 0.0])
        """
        p = check_probability(p, "p")
        n_a, n_b = check_cross_modal_game(game)
        if not isinstance(intra_modal, bool):
            raise TypeError(f"intra_modal: expected a bool, got {type(intra_modal).__name__}")
        used = banzhaf_budget(None if budget is None else check_int(budget, "budget", minimum=1), n_a, n_b, intra_modal)
        fit = fit_weighted_banzhaf(game, used, p, intra_modal, ExampleStreams(random_state).next())
        return terms_of_fits(
            [fit], [torch.ones(n_a, dtype=torch.bool)], [torch.ones(n_b, dtype=torch.bool)], torch.float64, "cpu",
            method="WeightedBanzhafInteractions", layers=("", ""),
            settings=dict(p=p, budget=used, intra_modal=intra_modal, random_state=describe_random_state(random_state)),
        )
