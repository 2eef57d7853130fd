"""Integrated Jacobians: Integrated Gradients for vector-valued outputs."""

import warnings
from typing import Any, Callable, Literal, Optional, Tuple, Union, overload

import torch
from captum.attr import GradientAttribution, LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from captum_bilinear._utils.encoder_side import EncoderSide, ExpansionAcrossExamples
from captum_bilinear._utils.adaptive_quadrature import StepCount, integrate_adaptively, max_relative
from captum_bilinear._utils.bilinear import FixedRule, Rule, quadrature_rule
from captum_bilinear._utils.integration import integrated_vjps, path_embeddings
from captum_bilinear._utils.layer_hooks import LayerTap
from captum_bilinear._utils.checks import check_flag
from captum_bilinear._utils.groups import check_feature_mask, grouped, is_partition
from captum_bilinear._utils.model_state import check_differentiable, evaluation_mode, outside_inference_mode
from captum_bilinear._utils.positions import num_positions
from captum_bilinear._utils.pair_inputs import SideBatch, check_internal_batch_size, side_baselines, side_tensors
from captum_bilinear._utils.callables import as_tuple, embedding_of, modules_behind


def _with_baselines(inputs: Any, baselines: Any, names: Tuple[str, str]) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
    """The inputs and their baselines in Captum's forms (None: zeros), checked, with
    ``names`` = (inputs' name, baselines' name) in the errors; tensors made in inference
    mode as normal copies (autograd cannot use them)."""
    formatted = side_tensors(inputs, names[0])
    if baselines is None:
        return outside_inference_mode((formatted, tuple(torch.zeros_like(x) for x in formatted)))
    return outside_inference_mode((formatted, side_baselines(baselines, formatted, names[1])))


class IntegratedJacobians(LayerAttribution, GradientAttribution):
    r"""Layer Integrated Gradients of every output dimension at once.

    For ``forward_func`` returning ``(batch, D)`` and a layer activation ``z`` with
    reference activation ``r``, the attribution of output ``k`` is

    .. math::

        \mathrm{IJ}_k = (z - r) \odot \int_0^1 \frac{\partial F_k(r + \alpha (z - r))}{\partial z} d\alpha ,

    exactly what Captum's ``LayerIntegratedGradients`` gives for ``target=k`` with the
    same ``n_steps``, ``method`` and baselines, computed with one reverse pass per
    output dimension and node; the layers below ``layer`` run at batch 1 (on the input, the
    baseline and once per batch of interpolated activations, not per row).

    Args:
        forward_func: ``forward_func(*inputs, *additional_forward_args) -> (batch, D)``.
        layer: the module whose output (or input) is attributed.
        multiply_by_inputs: as in Captum (False: integrated Jacobian without ``z - r``).

    Example:
        >>> import torch
        >>> from captum_bilinear import IntegratedJacobians
        >>> encoder = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        >>> ij = IntegratedJacobians(encoder, encoder[0])
        >>> attributions, delta = ij.attribute(torch.randn(2, 4), n_steps=32, return_convergence_delta=True)
        >>> attributions.shape  # (batch, D, *layer output shape)
        torch.Size([2, 3, 8])
        >>> bool(delta.abs().max() < 1e-4)
        True
    """

    def __init__(self, forward_func: Callable[..., Any], layer: nn.Module, multiply_by_inputs: bool = True) -> None:
        if not callable(forward_func):
            raise TypeError(f"forward_func: expected a callable returning (batch, D), got {type(forward_func).__name__}")
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer: expected a torch.nn.Module, got {type(layer).__name__}")
        # The modules forward_func runs, when they can be seen (a module, a bound method
        # of one, or one captured by a closure): the layer must be among them, and they
        # are put in eval mode during a call.
        self._owners = nn.ModuleList(modules_behind(forward_func))
        if len(self._owners) and not any(layer is m for owner in self._owners for m in owner.modules()):
            raise ValueError(f"layer: this {type(layer).__name__} is not a module of forward_func")
        LayerAttribution.__init__(self, forward_func, layer)
        GradientAttribution.__init__(self, forward_func)
        self._multiply_by_inputs = multiply_by_inputs

    @property
    def multiplies_by_inputs(self) -> bool:
        return self._multiply_by_inputs

    def has_convergence_delta(self) -> bool:
        return True

    def compute_convergence_delta(
        self,
        attributions: Tensor,
        start_point: Union[None, int, float, Tensor, Tuple[Union[int, float, Tensor], ...]],
        end_point: Union[Tensor, Tuple[Tensor, ...]],
        target: Optional[int] = None,
        additional_forward_args: Any = None,
    ) -> Tensor:
        r"""The completeness delta of every output dimension, as Captum's
        ``GradientAttribution.compute_convergence_delta`` defines it for one output:
        ``sum(attributions) - (F(end_point) - F(start_point))``, with ``F`` the forward
        function run on ``start_point`` and ``end_point`` (Captum's convention).

        Args:
            attributions: ``(batch, D, *activation)`` from :meth:`attribute`; with
                ``target``, the attributions of that output only, ``(batch, *activation)``
                (``attributions[:, target]``, what Captum's ``LayerIntegratedGradients``
                gives for ``target``).
            start_point: the baselines given to :meth:`attribute`, in its forms (None: zeros).
            end_point: the inputs given to :meth:`attribute`.
            target: None (every output dimension) or one output index ``k``.
            additional_forward_args: as given to :meth:`attribute`.

        Returns:
            ``(batch, D)`` (``target=None``): the attributions' sum over the activation
            minus ``F_k(end_point) - F_k(start_point)``, the ``delta`` of
            ``attribute(..., return_convergence_delta=True)``; ``(batch,)`` for ``target``.

        Example:
            >>> encoder = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
            >>> ij, x = IntegratedJacobians(encoder, encoder[0]), torch.randn(2, 4)
            >>> attributions = ij.attribute(x, n_steps=32)
            >>> delta = ij.compute_convergence_delta(attributions, None, x)
            >>> delta.shape, bool(delta.abs().max() < 1e-4)
            (torch.Size([2, 3]), True)
        """
        if not isinstance(attributions, Tensor):
            raise TypeError(f"attributions: expected a torch.Tensor, got {type(attributions).__name__}")
        if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
            raise TypeError(f"target: expected None or an output index (int), got {target!r}")
        end, start = _with_baselines(end_point, start_point, ("end_point", "start_point"))
        extra = outside_inference_mode(as_tuple(additional_forward_args))
        with torch.no_grad(), evaluation_mode(self._owners):
            change = embedding_of(self.forward_func(*end, *extra), "forward_func") - embedding_of(
                self.forward_func(*start, *extra), "forward_func")
        if target is not None:
            if not -change.shape[1] <= target < change.shape[1]:
                raise ValueError(f"target: the forward function has {change.shape[1]} outputs, got {target}")
            change = change[:, target]
        leading = change.dim()
        if attributions.dim() <= leading or tuple(attributions.shape[:leading]) != tuple(change.shape):
            expected = "(batch, *activation)" if target is not None else "(batch, D, *activation)"
            raise ValueError(f"attributions: expected {expected} with (batch{', D' if target is None else ''}) = "
                             f"{tuple(change.shape)}, got shape {tuple(attributions.shape)}")
        dtype = torch.promote_types(torch.promote_types(attributions.dtype, change.dtype), torch.float32)
        return attributions.to(dtype).flatten(leading).sum(-1) - change.to(device=attributions.device, dtype=dtype)

    @overload
    def attribute(self, inputs: Union[Tensor, Tuple[Tensor, ...]], baselines: Any = None, *,
                  additional_forward_args: Any = None, feature_mask: Optional[Tensor] = None, n_steps: StepCount = 50,
                  method: str = "gausslegendre", tolerance: float = 1e-4, max_steps: int = 1024,
                  internal_batch_size: Optional[int] = None, return_convergence_delta: Literal[False] = False,
                  attribute_to_layer_input: bool = False) -> Tensor: ...

    @overload
    def attribute(self, inputs: Union[Tensor, Tuple[Tensor, ...]], baselines: Any = None, *,
                  additional_forward_args: Any = None, feature_mask: Optional[Tensor] = None, n_steps: StepCount = 50,
                  method: str = "gausslegendre", tolerance: float = 1e-4, max_steps: int = 1024,
                  internal_batch_size: Optional[int] = None, return_convergence_delta: Literal[True],
                  attribute_to_layer_input: bool = False) -> Tuple[Tensor, Tensor]: ...

    @log_usage()
    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        baselines: Union[None, int, float, Tensor, Tuple[Union[int, float, Tensor], ...]] = None,
        *,
        additional_forward_args: Any = None,
        feature_mask: Optional[Tensor] = None,
        n_steps: StepCount = 50,
        method: str = "gausslegendre",
        tolerance: float = 1e-4,
        max_steps: int = 1024,
        internal_batch_size: Optional[int] = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        r"""Integrated Jacobian of the layer for every output dimension.

        Args:
            inputs: the forward function's attributed inputs (Tensor or tuple).
            baselines: Captum's forms: None (zeros), a number, or Tensors of the
                inputs' shapes (or batch 1).
            additional_forward_args: further arguments passed after the inputs.
            feature_mask: Captum's ``feature_mask`` for the layer's positions: None, or
                group ids ``(batch, positions)`` / ``(positions,)`` (``0 .. G-1``, ``-1``
                left out), or float group weights ``(G, positions)``; the attributions
                are then ``(batch, D, G)``, hidden dimensions summed within each group.
            n_steps, method: quadrature, as in Captum (default Gauss-Legendre); or
                ``n_steps="auto"``: Gauss-Kronrod panels bisected per example until the
                estimated error of the attributions (relative to their largest entry) and
                the exact completeness residuals (relative to ``|F(inputs) - F(baselines)|``)
                are within ``tolerance``.
            tolerance, max_steps: ``n_steps="auto"``'s relative error and most nodes
                per example (reaching it warns with the error reached).
            internal_batch_size: at most this many (node, output dimension) rows per pass
                (None: 256).
            return_convergence_delta: also return ``delta``.
            attribute_to_layer_input: attribute to the layer's input instead of output.

        Returns:
            ``attributions`` of shape ``(batch, D, *activation shape without batch)``
            (``(batch, D, G)`` with ``feature_mask``) and, if requested, ``delta``
            ``(batch, D)``: the attributions' sum over the activation minus
            ``F_k(inputs) - F_k(baselines)`` (refused when groups leave positions out).
        """
        rule = quadrature_rule(n_steps, method, tolerance, max_steps)
        if n_steps == "auto" and not self._multiply_by_inputs:
            raise ValueError("n_steps: 'auto' checks completeness, which needs multiply_by_inputs=True")
        check_internal_batch_size(internal_batch_size)
        check_flag(return_convergence_delta, "return_convergence_delta")
        check_differentiable(self._owners, "forward_func")
        side = SideBatch(*_with_baselines(inputs, baselines, ("inputs", "baselines")),
                         outside_inference_mode(as_tuple(additional_forward_args)))
        mask, _ = check_feature_mask((feature_mask, None), side.batch_size)
        if return_convergence_delta and mask is not None and (
                bool((mask.values < 0).any()) if not mask.is_weights else not all(map(is_partition, mask.values))):
            raise ValueError("return_convergence_delta: feature_mask leaves positions out of every group, so the "
                             "attributions do not add up to F(inputs) - F(baselines); put every position in a group "
                             "or drop return_convergence_delta")
        tap = LayerTap(self.layer, attribute_to_layer_input)
        attributions, deltas = [], []
        examples = ExpansionAcrossExamples(self.forward_func, tap)
        with evaluation_mode(self._owners):
            for index in range(side.batch_size):
                example = side.example(index)
                encoder, activation, reference, endpoints = examples.capture(
                    example.inputs, example.extra, example.baselines, endpoints=True)
                assert endpoints is not None  # endpoints=True always runs the endpoint pass
                delta = activation - reference
                direction = delta if self._multiply_by_inputs else torch.ones_like(delta)
                change = endpoints[0] - endpoints[1]
                groups = None if mask is None else mask.weights(index, num_positions(activation), "feature_mask")
                jacobian = self._integrate(encoder, reference, delta, direction, rule, change, internal_batch_size,
                                           groups)
                attributions.append(jacobian)
                change = change.to(jacobian.dtype)
                deltas.append(jacobian.flatten(1).sum(1) - change)
        result = torch.stack(attributions)
        if return_convergence_delta:
            return result, torch.stack(deltas)
        return result

    @staticmethod
    def _integrate(encoder: EncoderSide, reference: Tensor, delta: Tensor, direction: Tensor, rule: Rule,
                   change: Tensor, internal_batch_size: Optional[int], groups: Optional[Tensor] = None) -> Tensor:
        """``(D, *activation)`` (``(D, G)`` with ``groups``): one example's integrated
        Jacobian with ``rule``."""
        identity = torch.eye(change.shape[-1], dtype=delta.dtype, device=delta.device)

        def integrate(alphas: Tensor, weights: Tensor) -> Tensor:
            return integrated_vjps(encoder, reference, delta, direction, alphas, weights, identity,
                                   internal_batch_size, sum_hidden_dims=groups is not None)

        if isinstance(rule, FixedRule):
            return grouped(integrate(rule.alphas, rule.weights), groups)
        scale = max(float(change.norm()), 1e-12)
        result = integrate_adaptively(
            integrate, lambda integrals: integrals.flatten(2).sum(-1),
            lambda alphas: path_embeddings(encoder, reference, delta, alphas, internal_batch_size),
            lambda differences, total: max_relative(grouped(differences, groups), grouped(total, groups)),
            lambda residual: residual.norm(dim=-1) / scale, rule.tolerance, rule.max_steps,
        )
        if not result.reached:
            warnings.warn(f"n_steps='auto': max_steps={rule.max_steps} reached with estimated relative error "
                          f"{result.error:.2g} and relative completeness error {result.completeness:.2g} (tolerance "
                          f"{rule.tolerance:g}); raise max_steps or the tolerance", stacklevel=4)
        return grouped(result.integral, groups)
