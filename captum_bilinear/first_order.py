"""First-order views: Captum's methods on one side of a dual encoder, and interaction
results projected to one side."""

from typing import Any, Tuple, Union

import torch
from torch import Tensor, nn

from captum_bilinear._utils.callables import as_tuple
from captum_bilinear.adapters import as_dual_encoder
from captum_bilinear.encoders import DualEncoder

SIDES = ("a", "b")


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side: expected 'a' (e.g. the text) or 'b' (e.g. the image), got {side!r}")


#: Captum's LayerIntegratedGradients takes an int: beside BII's ``n_steps="auto"`` the
#: first-order maps use this many nodes (at the demo model's embeddings, what BII's auto
#: rule needs for 1e-4 on most pairs: benchmarks/auto_steps.py).
LIG_STEPS_WITH_AUTO = 64

class ConditionedSimilarity(nn.Module):
    r"""One side of a dual encoder as a scalar forward function for Captum, the other
    side's input held fixed: ``forward(*inputs, *extra) = scale * <e_fixed, e(inputs)>``.

    Any Captum attribution accepts it (``IntegratedGradients``, ``Saliency``,
    ``LayerIntegratedGradients``, ``LayerGradCam``, ``Lime``, ``KernelShap``, ...), which
    puts first-order maps of the "conditioned similarity" beside the interactions.

    With ``fixed_baselines`` the fixed side's embedding is replaced by its change
    ``e(fixed) - e(fixed baseline)``: Captum's ``LayerIntegratedGradients`` of this
    function on the varying side's layer then equals the interactions' projection
    ``A.sum`` over the fixed side's positions (up to the fixed side's quadrature error).

    Args:
        model: a HuggingFace ``CLIPModel`` / ``SiglipModel`` or a :class:`DualEncoder`.
        fixed_inputs: the fixed side's inputs (Tensor or tuple), batch 1 or the batch of
            the attributed inputs.
        side: the side that varies (``"b"``: explain the image given the caption).
        fixed_additional_forward_args: the fixed side's extra arguments.
        fixed_baselines: optional baselines of the fixed side (see above).

    Example:
        >>> import torch
        >>> from captum.attr import IntegratedGradients
        >>> from captum_bilinear import DualEncoder, ConditionedSimilarity
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <...>
        >>> model = DualEncoder(torch.nn.Linear(4, 3), torch.nn.Linear(5, 3))
        >>> forward = ConditionedSimilarity(model, torch.randn(1, 4), side="b")
        >>> image = torch.randn(1, 5)
        >>> attributions = IntegratedGradients(forward).attribute(image, n_steps=64)
        >>> bool(torch.isclose(attributions.sum(), forward(image) - forward(torch.zeros(1, 5)), atol=1e-4))
        True
    """

    fixed_embedding: Tensor  #: the fixed side's embedding (minus its baseline's), a buffer

    def __init__(
        self,
        model: Any,
        fixed_inputs: Any,
        side: str = "b",
        fixed_additional_forward_args: Any = None,
        fixed_baselines: Any = None,
    ) -> None:
        super().__init__()
        _check_side(side)
        self.model: DualEncoder = as_dual_encoder(model)
        self.side = side
        fixed_embed = self.model.embed_a if side == "b" else self.model.embed_b
        extra = as_tuple(fixed_additional_forward_args)
        with torch.no_grad():
            fixed = fixed_embed(*as_tuple(fixed_inputs), *extra)
            if fixed_baselines is not None:
                fixed = fixed - fixed_embed(*as_tuple(fixed_baselines), *extra)
        self.register_buffer("fixed_embedding", fixed.detach())

    def forward(self, *inputs: Any) -> Tensor:
        embed = self.model.embed_b if self.side == "b" else self.model.embed_a
        varying = embed(*inputs)
        fixed = self.fixed_embedding.to(varying.dtype)
        if fixed.shape[0] not in (1, varying.shape[0]):
            if varying.shape[0] % fixed.shape[0]:
                raise ValueError(
                    f"inputs: batch {varying.shape[0]} is not a multiple of the fixed side's batch {fixed.shape[0]}"
                )
            # Captum expands a batch step-major (the whole batch once per step).
            fixed = fixed.repeat(varying.shape[0] // fixed.shape[0], 1)
        return self.model.scale * (varying * fixed).sum(-1)


def first_order_projection(interactions: Tensor, side: str = "b") -> Tensor:
    """Sums an interaction result ``(batch, positions_a, positions_b)`` over the other side:
    ``side="b"`` gives ``(batch, positions_b)`` (e.g. one value per image position), the
    second-order counterpart of a first-order map of the conditioned similarity.

    Example:
        >>> first_order_projection(torch.ones(1, 2, 3), side="b")
        tensor([[2., 2., 2.]])
    """
    _check_side(side)
    if not isinstance(interactions, Tensor) or interactions.dim() != 3:
        raise ValueError("interactions: expected a (batch, positions_a, positions_b) Tensor")
    return interactions.sum(1 if side == "b" else 2)


def first_order_map(model: Any, layer: Any, inputs: Tuple[Tensor, Tensor], extra: Any, n_steps: Union[int, str],
                    has_cls: bool, grid_size: Tuple[int, int], tolerance: float = 1e-2) -> Tensor:
    """The integrated gradients of the caption-conditioned similarity ``f(a, .)`` at the
    image layer ``layer[1]``, from the model's default image reference, summed over hidden
    dims: a ``(grid_h, grid_w)`` map. It is what Captum's ``LayerIntegratedGradients`` of
    :class:`ConditionedSimilarity` gives (the tests compare them), computed at the layer:
    the caption as one group of BII's players, ``first_b + A.sum(0)`` (one JVP and two VJPs
    per node, the layers below run once) instead of the whole model per node.

    Args:
        model: a HF CLIP / SigLIP model or a :class:`DualEncoder`.
        layer: ``(text layer, image layer)``.
        inputs: ``(input_ids, pixel_values)`` of one pair.
        extra: ``(extra_a, extra_b)`` additional forward arguments.
        n_steps: quadrature nodes, or ``"auto"`` with ``tolerance``.
        has_cls, grid_size: the image side's layout.
        tolerance: ``n_steps="auto"``'s relative error.

    Example:
        >>> from captum_bilinear.loading import load_model
        >>> from captum_bilinear.zoo import generate_scene, scene_inputs
        >>> loaded = load_model()
        >>> batch = scene_inputs(generate_scene(0), loaded.tokenizer, loaded.image_processor)
        >>> layer = (loaded.model.text_model.encoder.layers[3], loaded.model.vision_model.encoder.layers[3])
        >>> first_order_map(loaded.model, layer, (batch["input_ids"], batch["pixel_values"]),
        ...                 ((batch["attention_mask"],), None), n_steps=4, has_cls=True, grid_size=(8, 8)).shape
        torch.Size([8, 8])
    """
    from captum_bilinear._core.bilinear_integrated_interactions import BilinearIntegratedInteractions
    from captum_bilinear.selection import patch_grid

    caption = torch.zeros(inputs[0].shape[1], dtype=torch.long)  # the whole caption, one group
    terms = BilinearIntegratedInteractions(model, layer).attribute_terms(
        inputs, additional_forward_args=extra, feature_mask=(caption, None), n_steps=n_steps, tolerance=tolerance)
    return patch_grid((terms.first_b[0] + terms.cross[0, 0]).detach(), grid_size, has_cls)
