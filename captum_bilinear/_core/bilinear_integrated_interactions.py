"""Bilinear integrated interactions (Moeller et al., TMLR 2025)."""

from typing import Any, Optional, Tuple, Union

import torch
from captum.attr import GradientAttribution
from captum.log import log_usage
from torch import Tensor

from captum_bilinear._utils.bilinear import PathSide, bilinear_interactions
from captum_bilinear._core.base import DualLayerAttribution, LayerPair
from captum_bilinear._utils.model_state import evaluation_mode
from captum_bilinear._utils.pair_inputs import check_internal_batch_size
from captum_bilinear._utils.progress import Progress
from captum_bilinear._utils.quadrature import interpolation_nodes


class BilinearIntegratedInteractions(DualLayerAttribution, GradientAttribution):
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
    """

    def __init__(self, model: Any, layer: Any, multiply_by_inputs: bool = True) -> None:
        DualLayerAttribution.__init__(self, model, layer)
        self._multiply_by_inputs = multiply_by_inputs

    @property
    def multiplies_by_inputs(self) -> bool:
        return self._multiply_by_inputs

    def has_convergence_delta(self) -> bool:
        return True

    @log_usage()
    def attribute(  # type: ignore[override]
        self,
        inputs: Tuple[Any, Any],
        baselines: Optional[Tuple[Any, Any]] = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        n_steps: int = 50,
        method: str = "gausslegendre",
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
            n_steps: quadrature nodes per path integral.
            method: Captum's approximation method: ``"gausslegendre"`` (default),
                ``"riemann_left"``, ``"riemann_right"``, ``"riemann_middle"``,
                ``"riemann_trapezoid"``.
            internal_batch_size: at most this many interpolated activations per forward /
                backward pass (None: all of one example at once). Memory is linear in it.
            return_convergence_delta: also return ``delta``.
            attribute_to_layer_input: attribute to the layers' inputs instead of outputs.
            show_progress: show a progress bar over the passes (rows of interpolated
                activations) through the layers above the attributed ones.

        Returns:
            ``A`` of shape ``(batch, positions_a, positions_b)`` (hidden dimensions summed,
            no position dropped) and, if requested, ``delta`` of shape ``(batch,)``:
            ``A.sum((1, 2)) - [f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)]``.
        """
        alphas, weights = interpolation_nodes(n_steps, method)
        check_internal_batch_size(internal_batch_size)
        side_a, side_b = self._prepare(inputs, baselines, additional_forward_args)
        interactions, deltas = [], []
        with evaluation_mode(self.dual_encoder), Progress(show_progress, type(self).__name__) as progress:
            for pair in self._layer_pairs(side_a, side_b, attribute_to_layer_input):
                matrix, delta = self._attribute_pair(pair, alphas, weights, internal_batch_size, progress)
                interactions.append(matrix)
                deltas.append(delta)
        result = torch.stack(interactions)
        if return_convergence_delta:
            return result, torch.cat(deltas)
        return result

    def _attribute_pair(
        self, pair: LayerPair, alphas: Tensor, weights: Tensor, internal_batch_size: Optional[int], progress: Progress
    ) -> Tuple[Tensor, Tensor]:
        g_input, g_reference, h_input, h_reference = pair.endpoint_embeddings()
        side_a = PathSide(pair.side_a, pair.input_a, pair.reference_a, self._multiply_by_inputs)
        side_b = PathSide(pair.side_b, pair.input_b, pair.reference_b, self._multiply_by_inputs)
        scale = self.dual_encoder.scale
        matrix = bilinear_interactions(
            side_a, side_b, alphas, weights, g_input.shape[-1], scale, internal_batch_size, progress
        )
        identity_value = scale * torch.dot(
            (g_input - g_reference).to(matrix.dtype), (h_input - h_reference).to(matrix.dtype)
        )
        return matrix, (matrix.sum() - identity_value).view(1)
