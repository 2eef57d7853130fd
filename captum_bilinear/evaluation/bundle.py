"""The model an evaluation runs: loaded once per process, with its layers and geometry."""

from dataclasses import dataclass
from typing import Any, Optional, Tuple, Union

import torch
from torch import Tensor

LayerSpec = Union[int, str]


def parse_layer(text: Any) -> LayerSpec:
    """``"embeddings"`` or an encoder layer index (negative from the end).

    Example:
        >>> parse_layer("3"), parse_layer("-2"), parse_layer("Embeddings")
        (3, -2, 'embeddings')
    """
    if isinstance(text, bool):
        raise ValueError(f"layer: expected 'embeddings' or an int, got {text!r}")
    if isinstance(text, int):
        return text
    if isinstance(text, str):
        if text.strip().lower() == "embeddings":
            return "embeddings"
        try:
            return int(text)
        except ValueError:
            pass
    raise ValueError(f"layer: expected 'embeddings' or an encoder layer index, got {text!r}")


@dataclass
class ModelBundle:
    """A dual encoder with everything the evaluation needs around it.

    Attributes:
        model: the HF CLIP / SigLIP model (eval mode, on ``device``).
        dual: it as a :class:`~captum_bilinear.DualEncoder`.
        tokenizer, image_processor: its preprocessing.
        name: what ``results.json`` calls it.
        layer: ``"embeddings"`` or the encoder layer index of the gradient methods.
        layers: that ``(text, vision)`` module pair.
        input_layers: the embeddings layers (the perturbation methods mask inputs).
        patch_size, grid: the vision geometry; ``has_cls``: image position 0 is CLS.
        pad_token_id: the id a masked caption token becomes.
        device: where the model runs.
        is_demo: a bundled demo model.
        naflex: the image side takes NaFlex patches with ``(pixel_attention_mask,
            spatial_shapes)`` (SigLIP-2); ``grid`` is then each example's own
            (:meth:`for_grid`), no CLS.
    """

    model: Any
    dual: Any
    tokenizer: Any
    image_processor: Any
    name: str
    layer: LayerSpec
    layers: Tuple[Any, Any]
    input_layers: Tuple[Any, Any]
    patch_size: int
    grid: Tuple[int, int]
    has_cls: bool
    pad_token_id: int
    device: torch.device
    is_demo: bool
    naflex: bool = False

    @property
    def image_positions(self) -> int:
        return self.grid[0] * self.grid[1] + int(self.has_cls)

    @property
    def image_players(self) -> Tensor:
        """The patch positions (CLS is never a player)."""
        return torch.arange(int(self.has_cls), self.image_positions)

    @property
    def n_layers(self) -> int:
        return len(self.model.vision_model.encoder.layers)

    def for_grid(self, grid: Tuple[int, int]) -> "ModelBundle":
        """The same model for an image of another patch grid (a NaFlex model's example)."""
        from dataclasses import replace

        return self if tuple(grid) == tuple(self.grid) else replace(self, grid=(int(grid[0]), int(grid[1])))

    def with_layer(self, layer: LayerSpec) -> "ModelBundle":
        """The same model attributed at another layer."""
        from dataclasses import replace

        from captum_bilinear.zoo import default_layers

        return replace(self, layer=layer, layers=default_layers(self.model, layer))


def load_bundle(model: Optional[str] = None, layer: Optional[LayerSpec] = None, device: Optional[str] = None) -> ModelBundle:
    """Loads a bundled demo model (``model=None``: the demo CLIP; ``"demo-clip"``,
    ``"demo-siglip2"``) or an HF CLIP / SigLIP / SigLIP-2 checkpoint.

    Args:
        model: a directory, hub id or demo name (see :func:`captum_bilinear.loading.load_model`).
        layer: ``"embeddings"`` or an encoder layer index; default: the demo model's
            ``default_layer``, ``-2`` for other models.
        device: e.g. ``"cpu"``, ``"cuda:1"``; default the CPU.

    Example:
        >>> bundle = load_bundle(layer="embeddings")
        >>> bundle.name, type(bundle.layers[1]).__name__, bundle.grid, bundle.has_cls
        ('bundled demo CLIP', 'CLIPVisionEmbeddings', (8, 8), True)
    """
    from captum_bilinear.adapters import as_dual_encoder
    from captum_bilinear.images import is_naflex_processor
    from captum_bilinear.loading import DEMO_MODELS, load_model
    from captum_bilinear.zoo import default_layers

    loaded = load_model(model)
    target = torch.device(device or "cpu")
    net = loaded.model.to(target).eval()
    spec = parse_layer(loaded.default_layer if layer is None else layer)
    n_layers = len(net.vision_model.encoder.layers)
    if isinstance(spec, int) and not -n_layers <= spec < n_layers:
        raise ValueError(f"layer: the model has {n_layers} encoder layers, got {spec}")
    vision = net.config.vision_config
    pad = net.config.text_config.pad_token_id
    if pad is None:
        pad = loaded.tokenizer.pad_token_id
    naflex = is_naflex_processor(loaded.image_processor)
    if naflex:  # the grid of a square image of max_num_patches (each example has its own)
        side = int(round(loaded.image_processor.max_num_patches ** 0.5))
        grid = (side, side)
    else:
        grid = (vision.image_size // vision.patch_size,) * 2
    return ModelBundle(
        model=net, dual=as_dual_encoder(net, processor=loaded.image_processor), tokenizer=loaded.tokenizer,
        image_processor=loaded.image_processor, name=loaded.name, layer=spec, layers=default_layers(net, spec),
        input_layers=(net.text_model.embeddings, net.vision_model.embeddings), patch_size=int(vision.patch_size),
        grid=grid, has_cls=hasattr(net.vision_model.embeddings, "class_embedding"), pad_token_id=int(pad),
        device=target, is_demo=model is None or model in DEMO_MODELS, naflex=naflex,
    )
