"""Small random HuggingFace dual encoders of every wrapped family, with inputs as their
processors give them and, for the oracle, each family's own embeddings (its
``get_*_features`` or, for BLIP's retrieval model, its own contrastive score) and its
default references written out by hand (not taken from the adapters under test).

Families that the installed transformers lacks are skipped with the reason."""

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import pytest
import torch
import transformers
from torch import Tensor

CLS, SEP = 90, 91  # the "[CLS]" / "[SEP]" (or "<s>" / "</s>") ids of the BERT-type test vocabularies


def features(output: Any) -> Tensor:
    return output if isinstance(output, Tensor) else output.pooler_output


def _small(hidden: int = 32, layers: int = 2, **more: Any) -> dict:
    return dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers, num_attention_heads=2,
                **more)


def _class(name: str) -> Any:
    if not hasattr(transformers, name):
        pytest.skip(f"transformers {transformers.__version__} has no {name} (it comes with a later version); "
                    "the 5.x run tests it")
    return getattr(transformers, name)


def reinitialize(module: torch.nn.Module, seed: int = 0) -> None:
    """Weights of ordinary scale for every parameter of ``module`` (matrices and kernels
    ~ N(0, 1/fan_in), norms' scales 1, biases and embeddings small): a freshly built
    ALIGN image tower embeds every image to exactly 0."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.dim() > 1:
                fan_in = parameter[0].numel()
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / fan_in ** 0.5)
            elif name.endswith("weight"):
                parameter.fill_(1.0)
            else:
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))


def bracketed(ids: Tensor, mask: Tensor, pad: int) -> Tensor:
    """``[first, PAD..., last input token, padding...]`` per row, by hand."""
    reference = ids.clone()
    for row in range(ids.shape[0]):
        last = int(mask[row].sum()) - 1
        reference[row, 1:last] = pad
    return reference


@dataclass
class Family:
    """One wrapped model with a batch of two pairs as its processor gives them."""

    name: str
    model: Any
    text_layers: Any  #: the text tower's layer list
    other_layers: Any  #: the image / audio tower's layer list (blocks or stages)
    input_ids: Tensor
    attention_mask: Optional[Tensor]
    other: Tensor  #: pixel_values / input_features
    extra_b: Tuple[Any, ...]
    reference_ids: Tensor
    reference_other: Tensor
    embed_text: Callable[[Tensor, Optional[Tensor]], Tensor]  #: the model's own text embedding
    embed_other: Callable[[Tensor, Tuple[Any, ...]], Tensor]  #: the model's own image / audio embedding
    similarity: Optional[Callable[[Tensor, Optional[Tensor], Tensor], Tensor]] = None  #: the model's own cosine
    layer_index: Tuple[int, int] = (0, 0)  #: the attributed layers' indices in text_layers / other_layers

    def double(self) -> "Family":
        """The same family in float64 (model, image / audio inputs and references), so the
        oracle's four cosines carry no float32 round-off (~1e-7, against identities of
        ~1e-4 on these random models)."""
        self.model.double()
        self.other, self.reference_other = self.other.double(), self.reference_other.double()
        return self

    @property
    def inputs(self) -> Tuple[Tensor, Tensor]:
        return self.input_ids, self.other

    @property
    def extra(self) -> Tuple[Any, Any]:
        return ((self.attention_mask,) if self.attention_mask is not None else None, self.extra_b or None)

    def layers(self) -> Tuple[Any, Any]:
        return self.text_layers[self.layer_index[0]], self.other_layers[self.layer_index[1]]

    def cosine(self, ids: Tensor, other: Tensor) -> Tensor:
        """The model's own cosine of a text and an image / audio batch."""
        with torch.no_grad():
            if self.similarity is not None:
                return self.similarity(ids, self.attention_mask, other)
            text = torch.nn.functional.normalize(self.embed_text(ids, self.attention_mask), dim=-1)
            image = torch.nn.functional.normalize(self.embed_other(other, self.extra_b), dim=-1)
            return (text * image).sum(-1)

    def identity(self) -> Tensor:
        """f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b) from the model's own embeddings."""
        return (self.cosine(self.input_ids, self.other) - self.cosine(self.reference_ids, self.other)
                - self.cosine(self.input_ids, self.reference_other)
                + self.cosine(self.reference_ids, self.reference_other))


def _bert_captions(pad: int) -> Tuple[Tensor, Tensor]:
    """Two captions ``[CLS] ... [SEP]``, the first right-padded."""
    ids = torch.tensor([[CLS, 11, 12, SEP, pad], [CLS, 11, 13, 14, SEP]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    return ids, mask


def _images(size: int = 32, seed: int = 1) -> Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _black(pixels: Tensor, mean: Tuple[float, ...], std: Tuple[float, ...]) -> Tensor:
    values = torch.tensor([-m / s for m, s in zip(mean, std)], dtype=pixels.dtype)
    return values.view(1, -1, 1, 1).expand_as(pixels).clone()


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _vit(**more: Any) -> dict:
    return dict(_small(**more), image_size=32, patch_size=8)


def _own(model: Any, text_method: str = "get_text_features", other_method: str = "get_image_features",
         other_input: str = "pixel_values", other_names: Tuple[str, ...] = ()) -> Tuple[Callable, Callable]:
    def embed_text(ids: Tensor, mask: Optional[Tensor]) -> Tensor:
        return features(getattr(model, text_method)(input_ids=ids, attention_mask=mask))

    def embed_other(x: Tensor, extra: Tuple[Any, ...]) -> Tensor:
        return features(getattr(model, other_method)(**{other_input: x}, **dict(zip(other_names, extra))))

    return embed_text, embed_other


def make_metaclip2() -> Family:
    cls = _class("MetaClip2Model")
    torch.manual_seed(0)
    model = cls(transformers.MetaClip2Config(text_config=_small(), vision_config=_vit(), projection_dim=16)).eval()
    bos, eos, pad = 49406, 49407, model.config.text_config.pad_token_id
    ids = torch.tensor([[bos, 320, 1125, eos, eos], [bos, 320, 1125, 539, eos]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    reference = torch.tensor([[bos, pad, pad, eos, eos], [bos, pad, pad, pad, eos]])
    pixels = _images()
    return Family("MetaCLIP 2", model, model.text_model.encoder.layers, model.vision_model.encoder.layers, ids, mask,
                  pixels, (), reference, _black(pixels, CLIP_MEAN, CLIP_STD), *_own(model))


def make_siglip2() -> Family:
    """SigLIP-2 with NaFlex patches of two images of different aspect ratios (3x4 and
    2x3 patch grids in 12 slots: the second has 6 padding slots, zero as the processor
    pads them)."""
    cls = _class("Siglip2Model")
    torch.manual_seed(0)
    text = _small(vocab_size=99, max_position_embeddings=16, pad_token_id=1, eos_token_id=98, bos_token_id=97)
    model = cls(transformers.Siglip2Config(text_config=text, vision_config=_small(num_patches=16, patch_size=4))).eval()
    ids = torch.tensor([[5, 6, 7, 98, 1, 1], [5, 9, 8, 10, 98, 1]])
    reference = torch.tensor([[1, 1, 1, 98, 1, 1], [1, 1, 1, 1, 98, 1]])
    shapes = torch.tensor([[3, 4], [2, 3]])
    mask = (torch.arange(12)[None, :] < shapes.prod(-1)[:, None]).long()
    pixels = torch.randn(2, 12, 48, generator=torch.Generator().manual_seed(1)) * mask[..., None]
    black = torch.full((2, 12, 48), -1.0) * mask[..., None]  # mean = std = 0.5; padding slots stay 0
    return Family("SigLIP-2", model, model.text_model.encoder.layers, model.vision_model.encoder.layers, ids, None,
                  pixels, (mask, shapes), reference, black,
                  *_own(model, other_names=("pixel_attention_mask", "spatial_shapes")))


def make_altclip() -> Family:
    torch.manual_seed(0)
    config = transformers.AltCLIPConfig(
        text_config=_small(vocab_size=99, project_dim=32, pad_token_id=1, bos_token_id=CLS, eos_token_id=SEP),
        vision_config=_vit(), projection_dim=16)
    model = transformers.AltCLIPModel(config).eval()
    ids, mask = _bert_captions(pad=1)
    pixels = _images()
    encoder = model.text_model.roberta.encoder  # its layers: .layers in transformers 5, .layer in 4
    return Family("AltCLIP", model, getattr(encoder, "layers", None) or encoder.layer, model.vision_model.encoder.layers, ids,
                  mask, pixels, (), bracketed(ids, mask, 1), _black(pixels, CLIP_MEAN, CLIP_STD), *_own(model))


def make_chinese_clip() -> Family:
    torch.manual_seed(0)
    config = transformers.ChineseCLIPConfig(text_config=_small(vocab_size=99, pad_token_id=0), vision_config=_vit(),
                                            projection_dim=16)
    model = transformers.ChineseCLIPModel(config).eval()
    ids, mask = _bert_captions(pad=0)
    pixels = _images()
    return Family("Chinese-CLIP", model, model.text_model.encoder.layer, model.vision_model.encoder.layers, ids, mask,
                  pixels, (), bracketed(ids, mask, 0), _black(pixels, CLIP_MEAN, CLIP_STD), *_own(model))


def make_align() -> Family:
    """ALIGN with a small EfficientNet (its image tower re-initialized, as built it
    embeds every image to 0, and its batch norms' statistics set from a batch of random
    images); 64x64 images, rescaled to [-1, 1] as its processor does."""
    torch.manual_seed(0)
    vision = dict(image_size=64, width_coefficient=0.1, depth_coefficient=0.1, hidden_dim=64)
    config = transformers.AlignConfig(text_config=_small(vocab_size=99, pad_token_id=0), vision_config=vision,
                                      projection_dim=32)
    model = transformers.AlignModel(config).eval()
    reinitialize(model.vision_model)
    for norm in model.vision_model.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.reset_running_stats(), setattr(norm, "momentum", None)  # cumulative: the batch's statistics
    with torch.no_grad():
        model.vision_model.train()(pixel_values=_images(64, seed=7).repeat(4, 1, 1, 1).clamp(-1, 1))
    model.eval()
    ids, mask = _bert_captions(pad=0)
    pixels = _images(64).clamp(-1, 1)
    return Family("ALIGN", model, model.text_model.encoder.layer, model.vision_model.encoder.blocks, ids, mask,
                  pixels, (), bracketed(ids, mask, 0), torch.full_like(pixels, -1.0), *_own(model),
                  layer_index=(0, 4))  # block 4: a (batch, 16, 4, 4) map, 16 cells


def make_blip() -> Family:
    """BLIP's retrieval model; the oracle is its own contrastive score
    ``model(..., use_itm_head=False).itm_score`` (the vision config's initializer range
    raised from 1e-10, at which every image gives the same class token)."""
    torch.manual_seed(0)
    config = transformers.BlipConfig(text_config=_small(vocab_size=99, pad_token_id=0),
                                     vision_config=_vit(initializer_range=0.02), image_text_hidden_size=16)
    model = transformers.BlipForImageTextRetrieval(config).eval()
    ids, mask = _bert_captions(pad=0)
    pixels = _images()

    def score(ids: Tensor, mask: Optional[Tensor], pixels: Tensor) -> Tensor:
        rows = [model(input_ids=ids[i:i + 1], pixel_values=pixels[i:i + 1], use_itm_head=False,
                      attention_mask=None if mask is None else mask[i:i + 1]).itm_score for i in range(ids.shape[0])]
        return torch.cat(rows).flatten()

    return Family("BLIP", model, model.text_encoder.encoder.layer, model.vision_model.encoder.layers, ids, mask,
                  pixels, (), bracketed(ids, mask, 0), _black(pixels, CLIP_MEAN, CLIP_STD), None, None, score)


def make_clap() -> Family:
    """CLAP (unfused HTSAT) on 100 frames x 16 mel bins, folded into a 64x64 image of
    16x16 patches: stage 0 gives 8x8 positions after its downsampling. Its projection
    heads use GELU here: with the released models' ReLU, random weights put kinks on
    the integration path and Gauss-Legendre needs far more than 32 nodes (the identity
    stays exact; see test_adapters_hf_clap.py)."""
    torch.manual_seed(0)
    audio = dict(spec_size=64, depths=[1, 1], num_attention_heads=[2, 2], hidden_size=32,
                 patch_embeds_hidden_size=16, num_mel_bins=16, window_size=4)
    config = transformers.ClapConfig(text_config=_small(vocab_size=99, pad_token_id=1), audio_config=audio,
                                     projection_dim=16, projection_hidden_act="gelu")
    model = transformers.ClapModel(config).eval()
    ids, mask = _bert_captions(pad=1)
    features_ = -40 + 20 * torch.randn(2, 1, 100, 16, generator=torch.Generator().manual_seed(1))
    silence = torch.full_like(features_, -100.0)  # 10 log10 of ClapFeatureExtractor's mel floor, 1e-10
    return Family("CLAP", model, model.text_model.encoder.layer, model.audio_model.audio_encoder.layers, ids, mask,
                  features_, (), bracketed(ids, mask, 1), silence,
                  *_own(model, other_method="get_audio_features", other_input="input_features"))


FAMILIES = {
    "metaclip2": make_metaclip2,
    "siglip2": make_siglip2,
    "altclip": make_altclip,
    "chinese_clip": make_chinese_clip,
    "align": make_align,
    "blip": make_blip,
    "clap": make_clap,
}
