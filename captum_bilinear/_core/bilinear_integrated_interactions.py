"""Bilinear integrated interactions (Moeller et al., TMLR 2025)."""

import warnings
from typing import Any, Dict, List, Literal, Optional, Tuple, Union, overload

import torch
from captum.attr import GradientAttribution
from captum.log import log_usage
from torch import Tensor

from captum_bilinear._core.base import DualLayerAttribution, FourTermConvergenceDelta, LayerPair
from captum_bilinear._utils.bilinear import BilinearTerms, Endpoints, PathSide, Rule, bilinear_terms, quadrature_rule
from captum_bilinear._utils.checks import check_flag
from captum_bilinear._utils.groups import FeatureMask, SideMask, check_feature_mask, is_partition
from captum_bilinear._utils.model_state import evaluation_mode
from captum_bilinear._utils.pair_inputs import check_internal_batch_size
from captum_bilinear._utils.positions import num_positions
from captum_bilinear._utils.progress import Progress
from captum_bilinear._utils.adaptive_quadrature import StepCount
from captum_bilinear.terms import InteractionTerms


class BilinearIntegratedInteractions(FourTermConvergenceDelta, DualLayerAttribution, GradientAttribution):
    r"""Token-patch interactions whose sum is the similarity change (Moeller et al. 2025).

    For layers ``z_a`` (``S`` positions) and ``z_b`` (``P`` positions) with references
    ``r_a``, ``r_b`` and normalized embeddings ``g``, ``h`` computed from them,

    .. math::

        A[s, p] = \mathrm{scale} \sum_k T[k, s]\, U[k, p], \qquad
        T[k, s] = \int_0^1 \Big\langle \frac{\partial g_k(r_a + \alpha \Delta_a)}{\partial z_a[s]},
        \Delta_a[s] \Big\rangle d\alpha

    (``U`` likewise), so that
    ``sum A = f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)`` up to quadrature error.

    No Jacobian is materialised: one side's ``T`` is computed by forward mode (one JVP
    per position and node) or reverse mode (one VJP per embedding dimension and node),
    the other side by contracting with it (one VJP per first-side position and node);
    the side order that needs fewer passes is chosen. The layers below the attributed
    ones run at batch 1: on the input, the reference and once per batch of interpolated
    activations (``internal_batch_size``), never once per row or node.

    Args:
        model: a HuggingFace ``CLIPModel`` / ``SiglipModel`` or a :class:`DualEncoder`.
        layer: ``(layer_a, layer_b)``, a module in each encoder (e.g.
            ``(model.text_model.encoder.layers[-2], model.vision_model.encoder.layers[-2])``);
            one module for both sides of a Siamese encoder.
        multiply_by_inputs: as in Captum's ``LayerIntegratedGradients``: with False the
            integrated Jacobians are not multiplied by ``Δ`` (summed over hidden dims
            instead), and completeness no longer holds.

    Example:
        >>> import torch
        >>> from transformers import CLIPConfig, CLIPModel
        >>> from captum_bilinear import BilinearIntegratedInteractions
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = CLIPModel(CLIPConfig(text_config=small, projection_dim=16,
        ...                   vision_config=dict(small, image_size=32, patch_size=8))).eval()
        >>> input_ids = torch.tensor([[49406, 320, 1125, 539, 49407]])
        >>> pixel_values = torch.randn(1, 3, 32, 32)
        >>> layer = (model.text_model.encoder.layers[0], model.vision_model.encoder.layers[0])
        >>> A, delta = BilinearIntegratedInteractions(model, layer).attribute(
        ...     (input_ids, pixel_values), n_steps=16, return_convergence_delta=True)
        >>> A.shape  # 5 tokens x (CLS + 16 patches)
        torch.Size([1, 5, 17])
        >>> bool(delta.abs().max() < 1e-4)
        True

        With ``n_steps="auto"`` the nodes are chosen per example until the completeness
        residuals are within ``tolerance`` of the score the interactions decompose; the
        terms say what was used:

        >>> terms = BilinearIntegratedInteractions(model, layer).attribute_terms(
        ...     (input_ids, pixel_values), n_steps="auto", tolerance=1e-4)
        >>> bool(terms.error.max() <= 1e-4), bool(abs(terms.total() - terms.delta - terms.cross.sum((1, 2))
        ...     - terms.intercept - terms.first_a.sum(1) - terms.first_b.sum(1)).max() < 1e-6)
        (True, True)
    """

    def __init__(self, model: Any, layer: Any, multiply_by_inputs: bool = True) -> None:
        DualLayerAttribution.__init__(self, model, layer)
        self._multiply_by_inputs = multiply_by_inputs

    @property
    def multiplies_by_inputs(self) -> bool:
        return self._multiply_by_inputs

    @overload
    def attribute(self, inputs: Tuple[Any, Any], baselines: Optional[Tuple[Any, Any]] = None, *,
                  additional_forward_args: Optional[Tuple[Any, Any]] = None, feature_mask: FeatureMask = None,
                  n_steps: StepCount = 50, method: str = "gausslegendre", tolerance: float = 1e-4,
                  max_steps: int = 1024, internal_batch_size: Optional[int] = None,
                  return_convergence_delta: Literal[False] = False,
                  attribute_to_layer_input: bool = False, show_progress: bool = False) -> Tensor: ...

    @overload
    def attribute(self, inputs: Tuple[Any, Any], baselines: Optional[Tuple[Any, Any]] = None, *,
                  additional_forward_args: Optional[Tuple[Any, Any]] = None, feature_mask: FeatureMask = None,
                  n_steps: StepCount = 50, method: str = "gausslegendre", tolerance: float = 1e-4,
                  max_steps: int = 1024, internal_batch_size: Optional[int] = None,
                  return_convergence_delta: Literal[True],
                  attribute_to_layer_input: bool = False, show_progress: bool = False) -> Tuple[Tensor, Tensor]: ...

    @log_usage()
    def attribute(
        self,
        inputs: Tuple[Any, Any],
        baselines: Optional[Tuple[Any, Any]] = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        feature_mask: FeatureMask = None,
        n_steps: StepCount = 50,
        method: str = "gausslegendre",
        tolerance: float = 1e-4,
        max_steps: int = 1024,
        internal_batch_size: Optional[int] = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        show_progress: bool = False,
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        r"""Interactions of every position of layer a with every position of layer b.

        Args:
            inputs: ``(inputs_a, inputs_b)``, each a Tensor or a tuple of Tensors with the
                same batch size, e.g. ``(input_ids, pixel_values)``.
            baselines: ``(baselines_a, baselines_b)``; either may be None for the default
                reference (HF CLIP: ``[BOS, PAD..., EOS]`` captions and a black image).
                Each baseline has its input's shape (or batch 1), or is a number.
            additional_forward_args: ``(extra_a, extra_b)``, non-attributed arguments
                passed after each side's inputs, e.g. ``((attention_mask,), None)``.
            feature_mask: ``(mask_a, mask_b)``, Captum's ``feature_mask`` for layer
                positions: each side None (every position its own player) or an integer
                Tensor ``(batch, positions)`` / ``(positions,)`` giving each position of that
                side's layer a group id ``0 .. G-1`` (``-1``: left out); a float Tensor
                ``(G, positions)`` / ``(batch, G, positions)`` gives group weights instead
                (e.g. :func:`~captum_bilinear.selection.box_weights`). ``A`` is then
                ``(batch, G_a, G_b)``, the full matrix summed over the groups, and the
                passes per node follow the groups of the side that goes first, not its
                positions. The convergence delta needs every position in exactly one
                group (``return_convergence_delta=True`` with positions left out is refused).
            n_steps: quadrature nodes per path integral, or ``"auto"``: Gauss-Kronrod
                panels (11 nodes each; three to start, placed by a few plain forward
                passes where the path turns), bisected per example where the estimated
                error of the result -- each panel's Kronrod-Gauss difference on the
                returned matrix, calibrated by the two rules' exact completeness
                residuals (one plain forward pass per panel boundary) -- is above the
                panel's share of ``tolerance``.
            method: Captum's approximation method for an int ``n_steps``:
                ``"gausslegendre"`` (default), ``"riemann_left"``, ``"riemann_right"``,
                ``"riemann_middle"``, ``"riemann_trapezoid"``.
            tolerance: ``n_steps="auto"``'s relative error of the returned matrix
                (estimated, relative to its largest entry; the first-order terms relative
                to their own largest). Default 1e-4; the commands use 1e-2 for figures
                (docs: Performance). The convergence delta is computed either way.
            max_steps: ``n_steps="auto"``'s most nodes evaluated per side and example;
                reaching it warns with the error reached.
            internal_batch_size: at most this many interpolated activations per forward /
                backward pass (None: 256 rows, which keeps the cost per node flat).
                Memory is linear in it.
            return_convergence_delta: also return ``delta``.
            attribute_to_layer_input: attribute to the layers' inputs instead of outputs.
            show_progress: show a progress bar over the passes (rows of interpolated
                activations) through the layers above the attributed ones.

        Returns:
            ``A`` of shape ``(batch, positions_a, positions_b)`` (hidden dimensions summed,
            no position dropped; ``(batch, G_a, G_b)`` with ``feature_mask``) and, if
            requested, ``delta`` of shape ``(batch,)``:
            ``A.sum((1, 2)) - [f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)]``.
        """
        if return_convergence_delta is True:
            _refuse_delta_without_partition(feature_mask)
        terms = self._compute(
            inputs, baselines, additional_forward_args, feature_mask, n_steps, method, tolerance, max_steps,
            internal_batch_size, return_convergence_delta, attribute_to_layer_input, show_progress,
            first_order=False,  # A alone: the second side's first-order cotangent is spared
        )
        if return_convergence_delta:
            assert terms.delta is not None
            return terms.cross, terms.delta
        return terms.cross

    @log_usage()
    def attribute_terms(
        self,
        inputs: Tuple[Any, Any],
        baselines: Optional[Tuple[Any, Any]] = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        feature_mask: FeatureMask = None,
        n_steps: StepCount = 50,
        method: str = "gausslegendre",
        tolerance: float = 1e-4,
        max_steps: int = 1024,
        internal_batch_size: Optional[int] = None,
        return_convergence_delta: bool = True,
        attribute_to_layer_input: bool = False,
        show_progress: bool = False,
        first_order: bool = True,
    ) -> InteractionTerms:
        r"""The whole decomposition of the score, as :class:`~captum_bilinear.InteractionTerms`.

        ``intercept = f(r_a, r_b)``; ``first_a`` the integrated gradients of ``f(., r_b)``
        over layer a (Captum's ``LayerIntegratedGradients`` of that function, summed over
        hidden dims), ``first_b`` those of ``f(r_a, .)`` over layer b; ``cross = A``. They
        sum to ``f(a, b)`` up to quadrature: the first-order terms of side a cost nothing
        beyond ``A``, those of side b one more cotangent per node. ``delta`` is the
        interactions' convergence delta (as :meth:`attribute` returns it), ``n_steps`` the
        nodes used per example, ``error`` (``n_steps="auto"``) the estimated relative
        error of the result. With ``feature_mask`` every term is per group (``first_a``
        ``(batch, G_a)``, ...); ``delta`` is None when the groups leave positions out.
        The arguments are those of :meth:`attribute` (``return_convergence_delta`` is
        ignored: the delta is in the terms whenever the groups cover every position), and
        ``first_order``.

        Args:
            first_order: compute the first-order terms (one more contraction pass per
                node); False leaves them zero (``has_first_order`` False).

        Returns:
            :class:`~captum_bilinear.InteractionTerms` with ``method``, ``layers`` and
            ``settings`` saying what produced them.
        """
        check_flag(first_order, "first_order")
        return self._compute(inputs, baselines, additional_forward_args, feature_mask, n_steps, method, tolerance,
                             max_steps, internal_batch_size, return_convergence_delta, attribute_to_layer_input,
                             show_progress, first_order=first_order)

    def _compute(
        self, inputs: Any, baselines: Any, additional_forward_args: Any, feature_mask: FeatureMask, n_steps: StepCount,
        method: str, tolerance: float, max_steps: int, internal_batch_size: Optional[int],
        return_convergence_delta: bool, attribute_to_layer_input: bool, show_progress: bool, first_order: bool,
    ) -> InteractionTerms:
        """:meth:`attribute_terms`; without ``first_order`` its first-order terms are zeros
        (``has_first_order`` False) and cost nothing."""
        rule = quadrature_rule(n_steps, method, tolerance, max_steps)
        if n_steps == "auto" and not self._multiply_by_inputs:
            raise ValueError("n_steps: 'auto' checks completeness, which needs multiply_by_inputs=True")
        check_internal_batch_size(internal_batch_size)
        check_flag(return_convergence_delta, "return_convergence_delta")
        check_flag(show_progress, "show_progress")
        side_a, side_b = self._prepare(inputs, baselines, additional_forward_args)
        masks = check_feature_mask(feature_mask, side_a.batch_size)
        results: List[Tuple[BilinearTerms, Endpoints, bool]] = []
        with evaluation_mode(self.dual_encoder), Progress(show_progress, type(self).__name__) as progress:
            for index, pair in enumerate(self._layer_pairs(side_a, side_b, attribute_to_layer_input)):
                results.append(self._attribute_pair(pair, rule, internal_batch_size, progress, masks, index,
                                                    first_order))
        return self._terms(results, n_steps, method, tolerance, max_steps, feature_mask is not None)

    def _attribute_pair(
        self, pair: LayerPair, rule: Rule, internal_batch_size: Optional[int], progress: Progress,
        masks: Tuple[Optional[SideMask], Optional[SideMask]], index: int, first_order: bool = True,
    ) -> Tuple[BilinearTerms, Endpoints, bool]:
        endpoints = Endpoints(*pair.endpoint_embeddings())
        sides = []
        for which, (side, activation, reference, mask) in enumerate((
                (pair.side_a, pair.input_a, pair.reference_a, masks[0]),
                (pair.side_b, pair.input_b, pair.reference_b, masks[1]))):
            groups = None if mask is None else mask.weights(index, num_positions(activation), f"feature_mask[{which}]")
            sides.append(PathSide(side, activation, reference, self._multiply_by_inputs, groups))
        terms = bilinear_terms(sides[0], sides[1], rule, endpoints.g_input.shape[-1], self.dual_encoder.scale,
                               endpoints, internal_batch_size, progress, first_order)
        if not terms.reached:
            warnings.warn(
                f"n_steps='auto': max_steps={rule.max_steps} reached with estimated relative error "  # type: ignore[union-attr]
                f"{terms.error:.2g} (tolerance {rule.tolerance:g}); raise max_steps or the tolerance",  # type: ignore[union-attr]
                stacklevel=4,
            )
        return terms, endpoints, sides[0].partition and sides[1].partition

    def _terms(self, results: List[Tuple[BilinearTerms, Endpoints, bool]], n_steps: StepCount, method: str,
               tolerance: float, max_steps: int, grouped: bool) -> InteractionTerms:
        scale = self.dual_encoder.scale
        cross = torch.stack([terms.cross for terms, _, _ in results])
        dtype = cross.dtype
        intercept = torch.stack([scale * torch.dot(e.g_reference.to(dtype), e.h_reference.to(dtype))
                                 for _, e, _ in results])
        identity = torch.stack([e.identity(scale).to(dtype) for _, e, _ in results])
        settings: Dict[str, Any] = {"n_steps": n_steps, "method": "gauss-kronrod panels" if n_steps == "auto" else method,
                                    "multiply_by_inputs": self._multiply_by_inputs}
        if n_steps == "auto":
            settings.update(tolerance=tolerance, max_steps=max_steps,
                            nodes_evaluated=[terms.evaluated for terms, _, _ in results])
        if grouped:
            settings["feature_mask"] = True
        covered = all(partition for _, _, partition in results)
        has_first_order = results[0][0].first_a is not None
        first_a = (torch.stack([terms.first_a for terms, _, _ in results]).to(dtype) if has_first_order  # type: ignore[misc]
                   else cross.new_zeros(cross.shape[:2]))
        first_b = (torch.stack([terms.first_b for terms, _, _ in results]).to(dtype) if has_first_order  # type: ignore[misc]
                   else cross.new_zeros(cross.shape[0], cross.shape[2]))
        return InteractionTerms(
            intercept=intercept, first_a=first_a, first_b=first_b, has_first_order=has_first_order,
            cross=cross, method=type(self).__name__, layers=self.layer_names(), settings=settings,
            delta=cross.sum((1, 2)) - identity if covered else None,
            n_steps=torch.tensor([terms.nodes for terms, _, _ in results]),
            error=torch.tensor([terms.error for terms, _, _ in results], dtype=torch.float64),
        )


def _refuse_delta_without_partition(feature_mask: FeatureMask) -> None:
    """The convergence delta compares the sum of ``A`` with the four-term identity, which
    only groups covering every position add up to: say so before any pass."""
    masks = check_feature_mask(feature_mask, batch=None) if feature_mask is not None else (None, None)
    for which, mask in enumerate(masks):
        if mask is None:
            continue
        leaves_out = bool((mask.values < 0).any()) if not mask.is_weights else not all(
            is_partition(weights) for weights in mask.values)
        if leaves_out:
            raise ValueError(
                f"return_convergence_delta: feature_mask[{which}] leaves positions out of every group (id -1, or "
                "weights that are not one group per position), so A does not add up to the four-term identity and "
                "has no convergence delta; put every position in a group or drop return_convergence_delta")
