"""Every method of the evaluation behind one interface: for a caption span, a map over
the image positions; for an image box, a map over the caption positions; and the terms
p-faithfulness scores (first-order and pairwise, where the method has them)."""

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from captum.attr import LayerGradCam, LayerIntegratedGradients
from torch import Tensor

from captum_bilinear import (
    BilinearIntegratedInteractions,
    ConditionedSimilarity,
    InteractionCAM,
    InteractionLIME,
    TokenPatchSimilarity,
    WeightedBanzhafInteractions,
)
from captum_bilinear.encoders import DualEncoder
from captum_bilinear.selection import box_token_map, span_image_map


@dataclass
class PairExplanation:
    """One method's explanation of one caption-image pair.

    ``interactions`` is ``(positions_a, positions_b)`` for second-order methods; first-order
    methods have ``image_values`` ``(positions_b,)`` and/or ``text_values`` ``(positions_a,)``
    instead, the same for every span / box.
    """

    seconds: float
    interactions: Optional[Tensor] = None
    image_values: Optional[Tensor] = None
    text_values: Optional[Tensor] = None
    intercept: Optional[float] = None
    first_a: Optional[Tensor] = None
    first_b: Optional[Tensor] = None

    def image_map(self, span: Tuple[int, int], grid: Tuple[int, int], has_cls: bool) -> Optional[Tensor]:
        if self.interactions is not None:
            return span_image_map(self.interactions, span, grid, has_cls)
        if self.image_values is None:
            return None
        return self.image_values[1 if has_cls else 0:].reshape(grid)

    def token_map(self, box: Tuple[int, int, int, int], image_size: Tuple[int, int], grid: Tuple[int, int],
                  has_cls: bool) -> Optional[Tensor]:
        if self.interactions is not None:
            return box_token_map(self.interactions, box, image_size, grid, has_cls)
        return self.text_values


@dataclass
class PairInputs:
    """A tokenized caption and an image, with the layers the methods attribute."""

    input_ids: Tensor
    attention_mask: Tensor
    pixel_values: Tensor
    text_reference: Tensor
    image_reference: Tensor
    layers: Tuple[Any, Any]  #: the gradient methods' layers
    input_layers: Tuple[Any, Any]  #: the embeddings layers (perturbation methods mask inputs)
    players_a: Tensor  #: caption positions that are players (content tokens)

    @property
    def inputs(self) -> Tuple[Tensor, Tensor]:
        return self.input_ids, self.pixel_values

    @property
    def extra(self) -> Tuple[Tuple[Tensor], None]:
        return (self.attention_mask,), None

    @property
    def positions(self) -> Tuple[int, int]:
        """(caption positions, image positions, CLS included)."""
        return self.input_ids.shape[1], self.input_layers[1].position_embedding.num_embeddings


@dataclass
class RunSettings:
    """What the methods' randomness and quadrature depend on."""

    seed: int
    n_steps: int


Explainer = Callable[[Any, DualEncoder, PairInputs, RunSettings], PairExplanation]


def _timed(run: Callable[[], Any]) -> Tuple[Any, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def _interaction_method(
    make: Callable[[Any, PairInputs], Any],
    options: Callable[[RunSettings, PairInputs], Dict[str, Any]] = lambda settings, pair: {},
) -> Explainer:
    def explain(model: Any, dual: DualEncoder, pair: PairInputs, settings: RunSettings) -> PairExplanation:
        method = make(model, pair)
        A, seconds = _timed(
            lambda: method.attribute(pair.inputs, additional_forward_args=pair.extra, **options(settings, pair)))
        return PairExplanation(seconds, interactions=A[0].detach())

    return explain


def _banzhaf(model: Any, dual: DualEncoder, pair: PairInputs, settings: RunSettings) -> PairExplanation:
    """FIxLIP as its paper runs it: inputs masked (the embeddings layers), p = 0.5, the
    special positions (BOS, EOS, CLS) never masked."""
    method = WeightedBanzhafInteractions(model, pair.input_layers, p=0.5)
    terms, seconds = _timed(lambda: method.attribute_terms(
        pair.inputs, additional_forward_args=pair.extra, budget=2**12, random_state=settings.seed,
        players=(pair.players_a, _image_players(model)),
    ))
    return PairExplanation(seconds, interactions=terms.cross[0].detach(), intercept=float(terms.intercept[0]),
                           first_a=terms.first_a[0].detach(), first_b=terms.first_b[0].detach())


def _image_players(model: Any) -> Tensor:
    config = model.config.vision_config
    return torch.arange(1, (config.image_size // config.patch_size) ** 2 + 1)


def _layer_integrated_gradients(model: Any, dual: DualEncoder, pair: PairInputs, settings: RunSettings) -> PairExplanation:
    def run() -> Tuple[Tensor, Tensor]:
        image_side = ConditionedSimilarity(dual, pair.input_ids, side="b", fixed_additional_forward_args=pair.extra[0])
        image = LayerIntegratedGradients(image_side, pair.layers[1]).attribute(
            pair.pixel_values, baselines=pair.image_reference, n_steps=settings.n_steps).sum(-1)[0]
        text_side = ConditionedSimilarity(dual, pair.pixel_values, side="a")
        text = LayerIntegratedGradients(text_side, pair.layers[0]).attribute(
            pair.input_ids, baselines=pair.text_reference, additional_forward_args=pair.extra[0], n_steps=settings.n_steps).sum(-1)[0]
        return image.detach(), text.detach()

    (image, text), seconds = _timed(run)
    return PairExplanation(seconds, image_values=image, text_values=text)


def _layer_grad_cam(model: Any, dual: DualEncoder, pair: PairInputs, settings: RunSettings) -> PairExplanation:
    """Captum's LayerGradCam needs a (batch, channels, height, width) layer: in a ViT that
    is the patch-embedding convolution. There is no such layer on the text side."""

    def run() -> Tensor:
        image_side = ConditionedSimilarity(dual, pair.input_ids, side="b", fixed_additional_forward_args=pair.extra[0])
        cam = LayerGradCam(image_side, model.vision_model.embeddings.patch_embedding).attribute(pair.pixel_values)
        return torch.cat([torch.zeros(1), cam[0, 0].flatten().detach()])  # no CLS value

    image, seconds = _timed(run)
    return PairExplanation(seconds, image_values=image)


#: The evaluated methods, by the name ``results.json`` uses.
EXPLAINERS: Dict[str, Explainer] = {
    "BilinearIntegratedInteractions": _interaction_method(
        lambda model, pair: BilinearIntegratedInteractions(model, pair.layers), lambda s, pair: dict(n_steps=s.n_steps)),
    "InteractionCAM": _interaction_method(lambda model, pair: InteractionCAM(model, pair.layers)),
    "InteractionLIME": _interaction_method(
        lambda model, pair: InteractionLIME(model, pair.input_layers),
        # The paper's 1000 samples cannot identify the surrogate of a long caption.
        lambda s, pair: dict(n_samples=max(1000, InteractionLIME.minimum_samples(*pair.positions)),
                             random_state=s.seed)),
    "ITSM-O": _interaction_method(lambda model, pair: TokenPatchSimilarity(model, pair.layers, "output")),
    "ITSM-H": _interaction_method(lambda model, pair: TokenPatchSimilarity(model, pair.layers, "hidden")),
    "WeightedBanzhafInteractions": _banzhaf,
    "LayerIntegratedGradients": _layer_integrated_gradients,
    "LayerGradCam": _layer_grad_cam,
}

#: Methods with pairwise terms (p-faithfulness scores them through the interactions).
SECOND_ORDER: List[str] = [name for name in EXPLAINERS if name not in ("LayerIntegratedGradients", "LayerGradCam")]
