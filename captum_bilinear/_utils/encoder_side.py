"""One example's pass through one encoder of a dual encoder, seen from one layer."""

from typing import Any, Callable, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from captum_bilinear._utils.layer_hooks import LayerTap
from captum_bilinear._utils.callables import embedding_of


def _repeat_batch(values: Tuple[Any, ...], copies: int) -> Tuple[Any, ...]:
    return tuple(
        value.expand(copies, *value.shape[1:]) if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == 1 else value
        for value in values
    )


class EncoderSide:
    """Embeds one example with the activation of ``tap.layer`` substituted.

    Args:
        embed: ``embed(*inputs, *extra) -> (batch, D)``, the side's (normalized) embedding.
        inputs: the example's attributed inputs, each with batch size 1.
        extra: the example's additional forward arguments for this side.
        tap: where the activation is read and replaced.
    """

    def __init__(
        self,
        embed: Callable[..., Tensor],
        inputs: Tuple[Any, ...],
        extra: Tuple[Any, ...],
        tap: LayerTap,
    ) -> None:
        self.embed = embed
        self.inputs = inputs
        self.extra = extra
        self.tap = tap
        # Whether the encoder accepts a larger batch at the layer than at its input
        # (decided by the first `endpoint_embeddings`); if not, the inputs are repeated.
        self.expands_at_layer: Optional[bool] = None

    def capture(self, inputs: Optional[Tuple[Any, ...]] = None) -> Tuple[Tensor, Tensor]:
        """The layer activation and the embedding of one pass on ``inputs`` (default: this
        side's inputs)."""
        with torch.no_grad(), self.tap.capture() as captured:
            embedding = embedding_of(self.embed(*(self.inputs if inputs is None else inputs), *self.extra))
        return captured[0], embedding

    def activation(self, inputs: Optional[Tuple[Any, ...]] = None) -> Tensor:
        """The layer activation for ``inputs`` (default: this side's inputs)."""
        return self.capture(inputs)[0]

    def embed_from(self, activation: Tensor) -> Tensor:
        """Embeddings ``(M, D)`` when the layer's activation is ``activation`` (M rows)."""
        copies = activation.shape[0]
        if self.expands_at_layer is False and copies > 1:
            inputs = _repeat_batch(self.inputs, copies)
            extra = _repeat_batch(self.extra, copies)
        else:
            inputs, extra = self.inputs, self.extra
        with self.tap.replace(activation):
            embedding = embedding_of(self.embed(*inputs, *extra))
        if embedding.dim() != 2 or embedding.shape[0] != copies:
            raise ValueError(
                f"{self.tap.name}: the encoder returned shape {tuple(embedding.shape)} for "
                f"{copies} substituted activations; expected ({copies}, embedding dim)"
            )
        return embedding

    def endpoint_embeddings(self, input_activation: Tensor, reference_activation: Tensor,
                            input_embedding: Optional[Tensor] = None) -> Tensor:
        """``(2, D)``: the embeddings of the input and reference activations, computed
        through the injected path (so the path integrals and the identity's terms see the
        same function).

        The first call also decides whether activations can be expanded at the layer: the
        two rows run as one batch of 2 on one example and are compared with single-row
        runs. Models whose later computations broadcast the example's other inputs (CLIP,
        SigLIP, mean pooling with a mask of batch 1) pass; others fall back to repeating
        the inputs, which re-runs the layers below the attributed one for every row.
        ``input_embedding`` (the embedding of a capture pass on the inputs, which replaces
        the activation by itself) saves one single-row run.
        """
        pair = torch.cat([input_activation, reference_activation])
        with torch.no_grad():
            if self.expands_at_layer is not None:
                return self.embed_from(pair)
            first = self.embed_from(input_activation) if input_embedding is None else input_embedding
            singles = torch.cat([first, self.embed_from(reference_activation)])
            if torch.equal(input_activation, reference_activation):
                # Two equal rows cannot tell; repeating the inputs is right for any encoder.
                self.expands_at_layer = False
                return singles
            self.expands_at_layer = True
            try:
                expanded = self.embed_from(pair)
                self.expands_at_layer = bool(
                    torch.allclose(expanded, singles, rtol=1e-3, atol=1e-5 * float(singles.abs().max()) + 1e-12)
                )
            except (RuntimeError, ValueError, IndexError):
                self.expands_at_layer = False
        return expanded if self.expands_at_layer else singles


class ExampleCapture(NamedTuple):
    """One example's side with its layer activations (batch 1 each)."""

    side: EncoderSide
    activation: Tensor  #: the input's activation at the layer
    reference: Tensor  #: the reference's activation (zeros with ``zero_reference``)
    embeddings: Optional[Tensor]  #: ``(2, D)`` input and reference embeddings, when the endpoint pass ran


class ExpansionAcrossExamples:
    """One encoder side over a batch's examples, one at a time, with whether the encoder
    expands at the layer decided once (by the first example's endpoint pass, see
    :meth:`EncoderSide.endpoint_embeddings`) and handed on to the later examples.

    Args:
        embed: ``embed(*inputs, *extra) -> (batch, D)``, the side's (normalized) embedding.
        tap: where the activation is read and replaced.
    """

    def __init__(self, embed: Callable[..., Tensor], tap: LayerTap) -> None:
        self.embed = embed
        self.tap = tap
        self.expands_at_layer: Optional[bool] = None

    @property
    def decided(self) -> bool:
        """Whether an endpoint pass has decided expansion."""
        return self.expands_at_layer is not None

    def capture(self, inputs: Tuple[Any, ...], extra: Tuple[Any, ...], baselines: Optional[Tuple[Any, ...]],
                zero_reference: bool = False, endpoints: bool = False) -> ExampleCapture:
        """One example's side and activations: the input's (one capture pass), the
        reference's (a pass on ``baselines``, or zeros with ``zero_reference``), and the
        endpoint embeddings when ``endpoints`` or expansion is not decided yet (that pass
        decides it).

        Args:
            inputs, extra: the example's attributed inputs and additional forward
                arguments (batch 1).
            baselines: the example's baselines (unused with ``zero_reference``).
            zero_reference: the reference activation is zeros.
            endpoints: always run the endpoint pass.
        """
        side = EncoderSide(self.embed, inputs, extra, self.tap)
        side.expands_at_layer = self.expands_at_layer
        activation, embedding = side.capture()
        reference = torch.zeros_like(activation) if zero_reference else side.activation(baselines)
        embeddings = None
        if endpoints or not self.decided:
            embeddings = side.endpoint_embeddings(activation, reference, embedding)
            self.expands_at_layer = side.expands_at_layer
        return ExampleCapture(side, activation, reference, embeddings)
