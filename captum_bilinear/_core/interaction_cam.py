"""InteractionCAM (Sammani et al. 2023): Jacobians times activations, combined bilinearly."""

import warnings
from typing import Any, Optional, Tuple
from collections.abc import Iterable, Iterator

import torch
from captum.attr import GradientAttribution
from captum.log import log_usage
from torch import Tensor

from captum_bilinear._utils.bilinear import PathSide, bilinear_interactions
from captum_bilinear._core.base import DualLayerAttribution
from captum_bilinear._utils.groups import FeatureMask, SideMask, check_feature_mask
from captum_bilinear._utils.model_state import evaluation_mode
from captum_bilinear._utils.pair_inputs import SideBatch, check_internal_batch_size
from captum_bilinear._utils.positions import num_positions
from captum_bilinear.terms import InteractionTerms


class InteractionCAM(DualLayerAttribution, GradientAttribution):
    r"""Interactions ``A = scale * (J_g(a) z_a)^T (J_h(b) z_b)`` per position pair.

    The special case of :class:`BilinearIntegratedInteractions` with zero references and
    one node at the input (``alpha = 1``): each side's Jacobian is evaluated at the
    actual activation only and multiplied by it ("gradient x activation"). Per embedding
    dimension ``k`` the side maps are Captum's ``LayerGradientXActivation`` of output
    ``k`` summed over hidden dims, and ``A[s, p] = scale * sum_k T[k, s] U[k, p]``. It has
    no completeness property (and so no :meth:`compute_convergence_delta`).

    Args:
        model: a HuggingFace ``CLIPModel`` / ``SiglipModel`` or a :class:`DualEncoder`.
        layer: ``(layer_a, layer_b)``, one module per encoder.

    Example:
        >>> import torch
        >>> from transformers import CLIPConfig, CLIPModel
        >>> from captum_bilinear import InteractionCAM
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = CLIPModel(CLIPConfig(text_config=small, projection_dim=16,
        ...                   vision_config=dict(small, image_size=32, patch_size=8))).eval()
        >>> layer = (model.text_model.encoder.layers[0], model.vision_model.encoder.layers[0])
        >>> inputs = (torch.tensor([[49406, 320, 49407]]), torch.randn(1, 3, 32, 32))
        >>> A = InteractionCAM(model, layer).attribute(inputs)
        >>> A.shape
        torch.Size([1, 3, 17])
        >>> terms = InteractionCAM(model, layer).attribute_terms(inputs)  # cross = A, nothing else
        >>> torch.equal(terms.cross, A), terms.has_first_order, terms.players_a.tolist()
        (True, False, [[True, True, True]])

        Groups as players (``feature_mask``): the word, and the image's CLS and 16 patches
        in two halves; the same as ``A`` summed over the groups, from fewer passes:

        >>> halves = torch.cat([torch.tensor([-1]), torch.arange(16) // 8])
        >>> grouped = InteractionCAM(model, layer).attribute(inputs, feature_mask=(torch.tensor([-1, 0, -1]), halves))
        >>> grouped.shape, torch.allclose(grouped[0, 0], torch.stack([A[0, 1, 1:9].sum(), A[0, 1, 9:].sum()]))
        (torch.Size([1, 1, 2]), True)
    """

    def __init__(self, model: Any, layer: Any) -> None:
        DualLayerAttribution.__init__(self, model, layer)

    @property
    def multiplies_by_inputs(self) -> bool:
        return True

    def compute_convergence_delta(self, *args: Any, **kwargs: Any) -> Tensor:
        """Not available: InteractionCAM has no completeness property (its maps are
        evaluated at the input only), so there is no sum for a delta to check. Captum's
        inherited first-order delta would compare ``A`` with a score it does not
        decompose; :class:`BilinearIntegratedInteractions` has the four-term delta."""
        raise NotImplementedError(
            "compute_convergence_delta: InteractionCAM has no completeness property (gradient x activation "
            "at the input only), so it has no convergence delta; BilinearIntegratedInteractions' interactions "
            "sum to f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b) and report their delta"
        )

    @log_usage()
    def attribute(
        self,
        inputs: Tuple[Any, Any],
        baselines: Optional[Tuple[Any, Any]] = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        feature_mask: FeatureMask = None,
        internal_batch_size: Optional[int] = None,
        attribute_to_layer_input: bool = False,
    ) -> Tensor:
        """Interactions of every position of layer a with every position of layer b
        (``attribute_terms(...).cross``).

        Args:
            inputs: ``(inputs_a, inputs_b)``, e.g. ``(input_ids, pixel_values)``.
            baselines: None (the paper: zero references, "Jacobians x activations"), or
                ``(baselines_a, baselines_b)`` whose layer activations are subtracted
                (``J (z - r)``; either may be None for the model's default reference).
            additional_forward_args: ``(extra_a, extra_b)``, e.g. ``((attention_mask,), None)``.
            feature_mask: ``(mask_a, mask_b)``, Captum's ``feature_mask`` for layer
                positions: each side None (every position its own player) or an integer
                Tensor ``(batch, positions)`` / ``(positions,)`` giving each position of that
                side's layer a group id ``0 .. G-1`` (``-1``: left out); a float Tensor
                ``(G, positions)`` / ``(batch, G, positions)`` gives group weights instead
                (e.g. :func:`~captum_bilinear.selection.box_weights`). ``A`` is then
                ``(batch, G_a, G_b)``, the full matrix summed over the groups, and the
                passes follow the groups of the side that goes first, not its positions
                (as in :class:`~captum_bilinear.BilinearIntegratedInteractions`).
            internal_batch_size: at most this many rows per forward / backward pass.
            attribute_to_layer_input: attribute to the layers' inputs instead of outputs.

        Returns:
            ``(batch, positions_a, positions_b)`` interactions (``(batch, G_a, G_b)`` with
            ``feature_mask``).
        """
        return self.attribute_terms(
            inputs, baselines, additional_forward_args=additional_forward_args, feature_mask=feature_mask,
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
        internal_batch_size: Optional[int] = None,
        attribute_to_layer_input: bool = False,
    ) -> InteractionTerms:
        """The interactions as :class:`~captum_bilinear.InteractionTerms`: ``cross = A``
        only (no intercept, no first-order terms: both zeros, ``has_intercept`` and
        ``has_first_order`` False); ``players_a`` / ``players_b`` are the positions that
        carry input (attention mask 1), where the model says which (with ``feature_mask``:
        the groups with weight on such a position). Takes the arguments of
        :meth:`attribute` (the class's example shows both).
        """
        check_internal_batch_size(internal_batch_size)
        side_a, side_b = self._prepare(inputs, baselines, additional_forward_args, with_baselines=baselines is not None)
        masks = check_feature_mask(feature_mask, side_a.batch_size)
        one_node = torch.ones(1, dtype=torch.float64)
        results, players_a, players_b = [], [], []
        with evaluation_mode(self.dual_encoder):
            pairs = self._layer_pairs(side_a, side_b, attribute_to_layer_input, zero_references=baselines is None)
            for index, (pair, groups) in enumerate(_with_groups(pairs, masks)):
                with torch.no_grad():
                    embedding_dim = pair.side_a.embed_from(pair.input_a).shape[-1]
                if index == 0 and baselines is None:
                    self._warn_if_scale_invariant(pair)
                matrix = bilinear_interactions(
                    PathSide(pair.side_a, pair.input_a, pair.reference_a, True, groups[0]),
                    PathSide(pair.side_b, pair.input_b, pair.reference_b, True, groups[1]),
                    one_node, one_node, embedding_dim, self.dual_encoder.scale, internal_batch_size,
                )
                results.append(matrix)
                players_a.append(_grouped_players(self._carries_input(side_a, "a", index, num_positions(pair.input_a)),
                                                  groups[0]))
                players_b.append(_grouped_players(self._carries_input(side_b, "b", index, num_positions(pair.input_b)),
                                                  groups[1]))
        cross = torch.stack(results)
        batch, positions_a, positions_b = cross.shape
        return InteractionTerms(
            intercept=cross.new_zeros(batch), first_a=cross.new_zeros(batch, positions_a),
            first_b=cross.new_zeros(batch, positions_b), cross=cross,
            players_a=torch.stack(players_a).to(cross.device), players_b=torch.stack(players_b).to(cross.device),
            method=type(self).__name__, layers=self.layer_names(),
            settings=dict(references="zero" if baselines is None else "baselines",
                          **({} if feature_mask is None else {"feature_mask": True})),
            has_intercept=False, has_first_order=False,
        )

    def _warn_if_scale_invariant(self, pair: Any) -> None:
        """Warns when a side's embedding (nearly) ignores the scale of its layer's
        activation: then ``J z ~ 0`` at every position (Euler: a function of degree 0
        has ``J z = 0``) and every interaction is round-off. That is the case where a
        per-position normalization reads the layer's output directly, e.g. CLIP's vision
        embeddings (``pre_layrnorm``) or the last encoder layer (the final LayerNorm).
        The test: the embedding's change when the activation is scaled by ``1 +- 1e-2``,
        against its change when moved as far along a fixed random direction."""
        names = self.layer_names()
        generator = torch.Generator().manual_seed(0)
        for which, side, activation in ((0, pair.side_a, pair.input_a), (1, pair.side_b, pair.input_b)):
            step = 1e-2
            direction = torch.randn(activation.shape, generator=generator, dtype=torch.float64)
            direction = direction.to(device=activation.device, dtype=activation.dtype)
            direction = direction * (activation.norm() / direction.norm().clamp_min(1e-30))
            with torch.no_grad():
                scaled = side.embed_from(activation * (1 + step)) - side.embed_from(activation * (1 - step))
                moved = side.embed_from(activation + step * direction) - side.embed_from(activation - step * direction)
            ratio = float(scaled.norm() / moved.norm().clamp_min(1e-30))
            if ratio < 1e-2:  # one text per layer: shown once per process, not once per pair of a run
                warnings.warn(
                    f"InteractionCAM: a normalization reads layer[{which}] ({names[which]}) directly: the embedding "
                    "changes over 100 times less when its activation is scaled than when it is "
                    "moved as far in another direction, so gradient x activation, and every interaction, is about "
                    "zero (round-off), not an explanation; choose another layer, e.g. an encoder layer before the last",
                    UserWarning, stacklevel=4)

    def _carries_input(self, side: SideBatch, which: str, index: int, positions: int) -> Tensor:
        mask = self._input_positions(side, which, index, positions)
        return torch.ones(positions, dtype=torch.bool) if mask is None else mask.detach().cpu().bool()


def _with_groups(pairs: Iterable[Any], masks: Tuple[Optional[SideMask], Optional[SideMask]]) -> Iterator[Any]:
    """Each example's layer pair with its sides' ``(G, positions)`` group weights (None:
    every position its own player)."""
    for index, pair in enumerate(pairs):
        sides = enumerate(zip(masks, (pair.input_a, pair.input_b)))
        yield pair, tuple(None if mask is None else mask.weights(index, num_positions(z), f"feature_mask[{which}]")
                          for which, (mask, z) in sides)


def _grouped_players(carries_input: Tensor, groups: Optional[Tensor]) -> Tensor:
    """bool ``(G,)``: the groups with weight on a position that carries input (without
    groups: ``carries_input`` itself)."""
    if groups is None:
        return carries_input
    return (groups[:, carries_input.cpu()] != 0).any(1)
