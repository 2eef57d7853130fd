"""ITSM: similarities of per-token and per-patch embeddings (ITSM-O / ITSM-H)."""

from typing import Any, Callable, Optional, Tuple

import torch
from captum.log import log_usage
from torch import Tensor

from captum_bilinear._core.base import DualLayerAttribution
from captum_bilinear._utils.groups import FeatureMask, SideMask, check_feature_mask, grouped
from captum_bilinear._utils.layer_hooks import LayerTap
from captum_bilinear._utils.model_state import evaluation_mode
from captum_bilinear.terms import InteractionTerms

VARIANTS = ("output", "hidden")


class TokenPatchSimilarity(DualLayerAttribution):
    r"""Image-text similarity map (ITSM): every token embedding times every patch embedding.

    Each position's hidden state is passed through its encoder's output head (final layer
    norm and projection, as the pooled token is), normalized, and compared with every
    position of the other side: ``A[s, p] = scale * cos(head_a(z_a[s]), head_b(z_b[p]))``.

    * ``variant="output"`` (ITSM-O): the encoders' last hidden states (the layer passed
      at construction is not used for them).
    * ``variant="hidden"`` (ITSM-H): the activations of the attributed layers, passed
      straight to the heads (the layers in between are skipped).

    Not an attribution of the similarity (it has no completeness property); it is the
    baseline Moeller et al. compare against. Needs per-position heads: HF CLIP has them;
    SigLIP's image head pools by attention and has none; a :class:`DualEncoder` passes
    ``token_head_a/b`` (and ``output_layer_a/b`` for ``"output"``).

    Args:
        model: a HuggingFace ``CLIPModel`` or a :class:`DualEncoder` with token heads.
        layer: ``(layer_a, layer_b)``, used by ``variant="hidden"``.
        variant: ``"output"`` or ``"hidden"``.

    Example:
        >>> import torch
        >>> from transformers import CLIPConfig, CLIPModel
        >>> from captum_bilinear import TokenPatchSimilarity
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = CLIPModel(CLIPConfig(text_config=small, projection_dim=16,
        ...                   vision_config=dict(small, image_size=32, patch_size=8))).eval()
        >>> layer = (model.text_model.encoder.layers[0], model.vision_model.encoder.layers[0])
        >>> itsm = TokenPatchSimilarity(model, layer, variant="hidden")
        >>> inputs = (torch.tensor([[49406, 320, 49407]]), torch.randn(1, 3, 32, 32))
        >>> A = itsm.attribute(inputs)
        >>> A.shape
        torch.Size([1, 3, 17])

        Groups (``feature_mask``): the matrix summed over them, here the word against
        the image's 16 patches in two halves:

        >>> halves = torch.cat([torch.tensor([-1]), torch.arange(16) // 8])
        >>> grouped = itsm.attribute(inputs, feature_mask=(torch.tensor([-1, 0, -1]), halves))
        >>> grouped.shape, torch.allclose(grouped[0, 0], torch.stack([A[0, 1, 1:9].sum(), A[0, 1, 9:].sum()]))
        (torch.Size([1, 1, 2]), True)
    """

    def __init__(self, model: Any, layer: Any, variant: str = "output") -> None:
        DualLayerAttribution.__init__(self, model, layer)
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected 'output' (ITSM-O) or 'hidden' (ITSM-H), got {variant!r}")
        encoder = self.dual_encoder
        heads = []
        for side, head in (("a", encoder.token_head_a), ("b", encoder.token_head_b)):
            if head is None:
                raise ValueError(
                    f"model: side {side} has no per-position output head (token_head_{side}); "
                    "TokenPatchSimilarity needs one (SigLIP's attention-pooling image head has none)"
                )
            heads.append(head)
        self._token_heads: Tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]] = (heads[0], heads[1])
        if variant == "output" and (encoder.output_layer_a is None or encoder.output_layer_b is None):
            raise ValueError("model: variant='output' needs output_layer_a and output_layer_b on the DualEncoder")
        self.variant = variant

    @log_usage()
    def attribute(
        self,
        inputs: Tuple[Any, Any],
        baselines: None = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        feature_mask: FeatureMask = None,
        attribute_to_layer_input: bool = False,
    ) -> Tensor:
        """Cosine similarity (times the model's scale) of every position pair
        (``attribute_terms(...).cross``).

        Args:
            inputs: ``(inputs_a, inputs_b)``, e.g. ``(input_ids, pixel_values)``.
            baselines: must be None (ITSM uses no reference; the argument keeps the
                signature of the other methods).
            additional_forward_args: ``(extra_a, extra_b)``, e.g. ``((attention_mask,), None)``.
            feature_mask: ``(mask_a, mask_b)``, Captum's ``feature_mask`` for layer
                positions: each side None (every position its own player) or an integer
                Tensor ``(batch, positions)`` / ``(positions,)`` giving each position of that
                side's layer a group id ``0 .. G-1`` (``-1``: left out); a float Tensor
                ``(G, positions)`` / ``(batch, G, positions)`` gives group weights instead
                (e.g. :func:`~captum_bilinear.selection.box_weights`). ``A`` is then
                ``(batch, G_a, G_b)``, the full matrix summed over the groups (the positions
                of the layers the similarities are read at: the last hidden states for
                ``"output"``).
            attribute_to_layer_input: read the layers' inputs instead of their outputs.

        Returns:
            ``(batch, positions_a, positions_b)`` (``(batch, G_a, G_b)`` with ``feature_mask``).
        """
        return self.attribute_terms(inputs, baselines, additional_forward_args=additional_forward_args,
                                    feature_mask=feature_mask, attribute_to_layer_input=attribute_to_layer_input).cross

    @log_usage()
    def attribute_terms(
        self,
        inputs: Tuple[Any, Any],
        baselines: None = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        feature_mask: FeatureMask = None,
        attribute_to_layer_input: bool = False,
    ) -> InteractionTerms:
        """The similarity map as :class:`~captum_bilinear.InteractionTerms`: ``cross`` only
        (no intercept, no first-order terms). Takes the arguments of :meth:`attribute`."""
        if baselines is not None:
            raise ValueError("baselines: TokenPatchSimilarity compares position embeddings and uses no reference; "
                             "expected None")
        side_a, side_b = self._prepare(inputs, None, additional_forward_args, with_baselines=False)
        masks = check_feature_mask(feature_mask, side_a.batch_size)
        encoder = self.dual_encoder
        layer_a, layer_b = self.layer if self.variant == "hidden" else (encoder.output_layer_a, encoder.output_layer_b)
        with evaluation_mode(encoder), torch.no_grad():
            tokens = self._position_embeddings(encoder.embed_a, side_a.inputs + side_a.extra, layer_a,
                                               self._token_heads[0], attribute_to_layer_input, "layer[0]")
            patches = self._position_embeddings(encoder.embed_b, side_b.inputs + side_b.extra, layer_b,
                                                self._token_heads[1], attribute_to_layer_input, "layer[1]")
        cross = _grouped(encoder.scale * torch.einsum("bsd,bpd->bsp", tokens, patches), masks)
        batch, positions_a, positions_b = cross.shape
        zeros = cross.new_zeros
        names = self.layer_names() if self.variant == "hidden" else ("output", "output")
        return InteractionTerms(
            intercept=zeros(batch), first_a=zeros(batch, positions_a), first_b=zeros(batch, positions_b), cross=cross,
            method=type(self).__name__, layers=names,
            settings=dict(variant=self.variant, **({} if feature_mask is None else {"feature_mask": True})),
            has_intercept=False, has_first_order=False,
        )

    @staticmethod
    def _position_embeddings(
        embed: Callable[..., Tensor], arguments: Tuple[Any, ...], layer: Any, head: Callable[[Tensor], Tensor],
        attribute_to_layer_input: bool, name: str,
    ) -> Tensor:
        tap = LayerTap(layer, attribute_to_layer_input, name=name)
        with tap.capture() as captured:
            embed(*arguments)
        hidden = captured[0]
        if hidden.dim() != 3:
            raise ValueError(
                f"{name}: ITSM needs per-position hidden states (batch, positions, hidden) to pass through the "
                f"encoder's output head; this module's output has shape {tuple(hidden.shape)} (a projection or "
                "pooled layer has no positions): choose an encoder layer or the embeddings"
            )
        try:
            projected = head(hidden)
        except RuntimeError as error:
            raise ValueError(
                f"{name}: the encoder's output head cannot take this module's output of shape {tuple(hidden.shape)} "
                f"({str(error).splitlines()[0]}); choose an encoder layer or the embeddings"
            ) from error
        return projected / projected.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _grouped(cross: Tensor, masks: Tuple[Optional[SideMask], Optional[SideMask]]) -> Tensor:
    """``(batch, positions_a, positions_b)`` summed over each side's groups (the full
    matrix is one pass: grouping it costs nothing worth sparing)."""
    if all(mask is None for mask in masks):
        return cross
    rows = []
    for index, matrix in enumerate(cross):
        for which, mask in enumerate(masks):
            if mask is not None:
                weights = mask.weights(index, matrix.shape[which], f"feature_mask[{which}]")
                matrix = grouped(matrix, weights, dim=which)
        rows.append(matrix)
    return torch.stack(rows)
