"""What every interaction method shares: the model as a :class:`DualEncoder`, one layer
per side, argument checks, and per-example access to both sides' layer activations."""

from typing import Any, Iterator, List, NamedTuple, Optional, Tuple

import torch
from captum.attr import GradientAttribution, LayerAttribution
from torch import Tensor

from captum_bilinear._utils.encoder_side import EncoderSide, ExpansionAcrossExamples
from captum_bilinear._utils.layer_hooks import LayerTap
from captum_bilinear._utils.model_state import check_differentiable, evaluation_mode
from captum_bilinear._utils.pair_inputs import SideBatch, prepare_layers, prepare_pair
from captum_bilinear.adapters import as_dual_encoder


class SimilarityTerms(NamedTuple):
    """The four similarities of the completeness identity, each ``(batch,)``.

    ``interaction = similarity - reference_a - reference_b + reference_both`` is what the
    interactions of :class:`BilinearIntegratedInteractions` sum to. With uninformative
    references the three reference terms are near zero and the interactions decompose
    ``similarity`` itself; when they are not, report them.
    """

    similarity: Tensor  #: f(a, b)
    reference_a: Tensor  #: f(r_a, b)
    reference_b: Tensor  #: f(a, r_b)
    reference_both: Tensor  #: f(r_a, r_b)

    @property
    def interaction(self) -> Tensor:
        return self.similarity - self.reference_a - self.reference_b + self.reference_both


class LayerPair(NamedTuple):
    """One example's two encoder sides with their layer activations (batch 1 each).

    ``embeddings_a`` / ``embeddings_b`` (``(2, D)``: input, reference), when the pair was
    built with them, spare :meth:`endpoint_embeddings` its passes."""

    side_a: EncoderSide
    side_b: EncoderSide
    input_a: Tensor
    reference_a: Tensor
    input_b: Tensor
    reference_b: Tensor
    embeddings_a: Optional[Tensor] = None
    embeddings_b: Optional[Tensor] = None

    def endpoint_embeddings(self) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """``g(a), g(r_a), h(b), h(r_b)`` computed through the injected path, so that the
        identity's terms and the path integrals see the same function."""
        embedded_a = self.embeddings_a
        if embedded_a is None:
            embedded_a = self.side_a.endpoint_embeddings(self.input_a, self.reference_a)
        embedded_b = self.embeddings_b
        if embedded_b is None:
            embedded_b = self.side_b.endpoint_embeddings(self.input_b, self.reference_b)
        return embedded_a[0], embedded_a[1], embedded_b[0], embedded_b[1]

    def similarity_terms(self, scale: float) -> SimilarityTerms:
        g_input, g_reference, h_input, h_reference = self.endpoint_embeddings()

        def similarity(g: Tensor, h: Tensor) -> Tensor:
            return scale * (g * h).sum().view(1)

        return SimilarityTerms(
            similarity(g_input, h_input),
            similarity(g_reference, h_input),
            similarity(g_input, h_reference),
            similarity(g_reference, h_reference),
        )


def _check_reaches_embedding(embeddings: Optional[Tensor], activation: Tensor, reference: Tensor, name: str) -> None:
    """A layer whose output never reaches the embedding would give zero (perturbation) or
    autograd errors (gradients) later; say so now. ``embeddings``: ``(2, D)`` for the
    input's and the reference's activation."""
    if embeddings is None or torch.equal(activation, reference):
        return
    if torch.equal(embeddings[0], embeddings[1]):
        raise ValueError(
            f"{name}: the embedding is the same whether this module's output is the input's or the "
            "reference's, so its output never reaches the embedding; choose a module on the path to the "
            "pooled embedding (e.g. an encoder layer or the embeddings)"
        )


class DualLayerAttribution(LayerAttribution):
    """Base of the interaction methods: ``(model, layer)`` with ``layer`` a pair of
    modules, one in each encoder (or one module for both sides of a Siamese encoder)."""

    def __init__(self, model: Any, layer: Any) -> None:
        dual_encoder = as_dual_encoder(model)
        layers = prepare_layers(dual_encoder, layer)
        LayerAttribution.__init__(self, dual_encoder, layers)
        self.dual_encoder = dual_encoder
        self.model = model

    def layer_names(self) -> Tuple[str, str]:
        """The attributed modules' names in the model (``""`` where not found)."""
        named = {id(module): name for name, module in self.model.named_modules()} if hasattr(self.model, "named_modules") else {}
        return tuple(named.get(id(module), type(module).__name__) for module in self.layer)

    def _input_positions(self, side: SideBatch, which: str, index: int, positions: int) -> Optional[Tensor]:
        """bool ``(positions,)`` of example ``index``'s layer positions that carry input
        (None: all, or unknown at this layer)."""
        mask = self.dual_encoder.input_positions(which, side.inputs, side.extra)
        if mask is None or mask.dim() != 2 or mask.shape[1] != positions:
            return None
        return mask[index]

    def _player_games(
        self, side_a: SideBatch, side_b: SideBatch, players: Tuple[Optional[Tensor], Optional[Tensor]],
        attribute_to_layer_input: bool, internal_batch_size: Optional[int],
        groups: Tuple[Any, Any] = (None, None),
    ) -> Iterator[Tuple[Any, Tensor, Tensor, Tensor]]:
        """Per example, the layer-masking game of its players (the selected positions that
        carry input; with ``groups``, a side's checked ``feature_mask``, its groups that
        have such a position) and ``(game, players_a mask, players_b mask, input_a
        activation)``, the masks over positions (over groups for a grouped side)."""
        from captum_bilinear._utils.players import group_players, player_mask
        from captum_bilinear._utils.positions import num_positions
        from captum_bilinear.games import LayerMaskingGame

        for index, pair in enumerate(self._layer_pairs(side_a, side_b, attribute_to_layer_input)):
            masks: List[Tensor] = []
            members: List[Optional[Tensor]] = []  # per side: its groups as players, None when ungrouped
            for which, (side, activation) in enumerate(((side_a, pair.input_a), (side_b, pair.input_b))):
                positions = num_positions(activation)
                carries_input = self._input_positions(side, "ab"[which], index, positions)
                if groups[which] is None:
                    masks.append(player_mask(players[which], positions, f"players[{which}]", carries_input))
                    members.append(None)
                else:
                    member, is_player = group_players(groups[which], index, positions, f"feature_mask[{which}]",
                                                      carries_input)
                    masks.append(is_player)
                    members.append(member)
            game = LayerMaskingGame(pair.side_a, pair.input_a, pair.reference_a, pair.side_b, pair.input_b,
                                    pair.reference_b, masks[0].nonzero().squeeze(1), masks[1].nonzero().squeeze(1),
                                    self.dual_encoder.scale, internal_batch_size, groups_a=members[0],
                                    groups_b=members[1])
            yield game, masks[0], masks[1], pair.input_a

    def _prepare(
        self, inputs: Any, baselines: Any, additional_forward_args: Any, with_baselines: bool = True
    ) -> Tuple[SideBatch, SideBatch]:
        if isinstance(self, GradientAttribution):
            check_differentiable(self.dual_encoder)
        return prepare_pair(self.dual_encoder, inputs, baselines, additional_forward_args, with_baselines)

    def _layer_pairs(
        self, side_a: SideBatch, side_b: SideBatch, attribute_to_layer_input: bool, zero_references: bool = False
    ) -> Iterator[LayerPair]:
        """Per example, both sides' encoders and their activations for input and reference
        (the layers below the attributed ones run once for each); with
        ``zero_references`` the reference activations are zeros and the baselines unused."""
        if not isinstance(attribute_to_layer_input, bool):
            raise TypeError(f"attribute_to_layer_input: expected a bool, got {type(attribute_to_layer_input).__name__}")
        layer_a, layer_b = self.layer
        tap_a = LayerTap(layer_a, attribute_to_layer_input, name="layer[0]")
        tap_b = LayerTap(layer_b, attribute_to_layer_input, name="layer[1]")
        sides_a = ExpansionAcrossExamples(self.dual_encoder.embed_a, tap_a)
        sides_b = ExpansionAcrossExamples(self.dual_encoder.embed_b, tap_b)
        for index in range(side_a.batch_size):
            example_a, example_b = side_a.example(index), side_b.example(index)
            first = not (sides_a.decided and sides_b.decided)  # its endpoint pass decides expansion
            a = sides_a.capture(example_a.inputs, example_a.extra, example_a.baselines, zero_references)
            b = sides_b.capture(example_b.inputs, example_b.extra, example_b.baselines, zero_references)
            pair = LayerPair(a.side, b.side, a.activation, a.reference, b.activation, b.reference,
                             a.embeddings, b.embeddings)
            if first:
                _check_reaches_embedding(pair.embeddings_a, a.activation, a.reference, "layer[0]")
                _check_reaches_embedding(pair.embeddings_b, b.activation, b.reference, "layer[1]")
            yield pair

    def similarity_terms(
        self,
        inputs: Any,
        baselines: Any = None,
        additional_forward_args: Any = None,
        attribute_to_layer_input: bool = False,
    ) -> SimilarityTerms:
        """The four similarities ``f(a,b), f(r_a,b), f(a,r_b), f(r_a,r_b)`` (each
        ``(batch,)``), computed through the attributed layers with the same references
        as ``attribute``; ``.interaction`` is the sum the interactions decompose.

        Example:
            >>> terms = method.similarity_terms((input_ids, pixel_values))  # doctest: +SKIP
            >>> terms.similarity, terms.interaction                            # doctest: +SKIP
        """
        side_a, side_b = self._prepare(inputs, baselines, additional_forward_args)
        with evaluation_mode(self.dual_encoder):
            terms = [
                pair.similarity_terms(self.dual_encoder.scale)
                for pair in self._layer_pairs(side_a, side_b, attribute_to_layer_input)
            ]
        return SimilarityTerms(*(torch.cat(column) for column in zip(*terms)))


class FourTermConvergenceDelta(DualLayerAttribution):
    """``compute_convergence_delta`` for methods whose interactions sum to the four-term
    identity ``f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)`` (in place of Captum's
    first-order delta ``sum - [f(input) - f(baseline)]``, which compares them with a
    score they do not decompose). A :class:`DualLayerAttribution`, placed before
    Captum's ``GradientAttribution`` in the bases."""

    def has_convergence_delta(self) -> bool:
        return True

    def compute_convergence_delta(
        self,
        attributions: Tensor,
        inputs: Any,
        baselines: Any = None,
        *,
        additional_forward_args: Any = None,
        attribute_to_layer_input: bool = False,
    ) -> Tensor:
        """``(batch,)``: ``attributions.sum((1, 2))`` minus the identity's value per
        example, its four similarities computed through the attributed layers with the
        references ``attribute`` uses (:meth:`DualLayerAttribution.similarity_terms`).

        Args:
            attributions: ``(batch, positions_a, positions_b)`` interactions.
            inputs, baselines, additional_forward_args, attribute_to_layer_input: as
                given to ``attribute``.

        Returns:
            the delta of each example, in the attributions' dtype (at least float32).

        Example:
            >>> A = method.attribute((input_ids, pixel_values), n_steps=32)                # doctest: +SKIP
            >>> method.compute_convergence_delta(A, (input_ids, pixel_values))            # doctest: +SKIP
            tensor([-3.1e-07])
        """
        if not isinstance(attributions, Tensor):
            raise TypeError(f"attributions: expected a torch.Tensor, got {type(attributions).__name__}")
        if attributions.dim() != 3:
            raise ValueError("attributions: expected interactions of shape (batch, positions_a, positions_b), "
                             f"got shape {tuple(attributions.shape)}")
        from captum_bilinear._utils.positions import num_positions

        side_a, side_b = self._prepare(inputs, baselines, additional_forward_args)
        if side_a.batch_size != attributions.shape[0]:
            raise ValueError(f"attributions: a batch of {attributions.shape[0]} for inputs of batch {side_a.batch_size}")
        terms, positions = [], None
        with evaluation_mode(self.dual_encoder):
            for pair in self._layer_pairs(side_a, side_b, attribute_to_layer_input):
                if positions is None:
                    positions = (num_positions(pair.input_a), num_positions(pair.input_b))
                    if tuple(attributions.shape[1:]) != positions:
                        raise ValueError(
                            "attributions: expected the interactions of these inputs at these layers, of shape "
                            f"(batch, positions_a, positions_b) = {(side_a.batch_size, *positions)}, got shape "
                            f"{tuple(attributions.shape)}")
                terms.append(pair.similarity_terms(self.dual_encoder.scale))
        identity = SimilarityTerms(*(torch.cat(column) for column in zip(*terms))).interaction
        dtype = torch.promote_types(torch.promote_types(attributions.dtype, identity.dtype), torch.float32)
        return attributions.to(dtype).sum((1, 2)) - identity.to(device=attributions.device, dtype=dtype)
