"""HuggingFace ``ClapModel``: text-audio pairs. A RoBERTa text tower pooled at its first
token, an HTSAT (Swin) audio tower over log-mel spectrograms.

Text (side a): ``input_ids``; additional forward arguments ``(attention_mask,
position_ids)``; default reference ``[<s>, <pad>..., </s>, padding...]``. Audio (side b):
``input_features`` ``(batch, 1 or 4, frames, mel bins)`` as ``ClapFeatureExtractor``
gives them, additional argument ``is_longer`` (the fusion models'); default reference
the feature extractor's output for silence (the ``processor``'s when given, else a
default ``ClapFeatureExtractor``'s with the model's mel bins).

Layers of the audio tower are its stages, ``model.audio_model.audio_encoder.layers[k]``
(a stage returns a tuple: its first element, the downsampled tokens, is attributed), or
their blocks. HTSAT folds the spectrogram's time axis into rows of an image before
patching; :func:`captum_bilinear.selection.spectrogram_cells` unfolds a stage's
positions back to (mel band, time) cells for figures.
"""

import functools
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from captum_bilinear.adapters._hf_sides import check_argument_count, features_function, text_side

CLASSES = ("ClapModel",)


@functools.lru_cache(maxsize=8)
def _silence_of_default_extractor(mel_bins: int) -> float:
    import numpy as np
    from transformers import ClapFeatureExtractor

    extractor = ClapFeatureExtractor(feature_size=mel_bins)
    return _constant(extractor(np.zeros(extractor.sampling_rate // 10), sampling_rate=extractor.sampling_rate,
                               return_tensors="pt")["input_features"])


def _constant(features: Tensor) -> float:
    if not bool((features == features.flatten()[0]).all()):
        raise ValueError("baselines[1]: the feature extractor's features of silence are not constant; pass an audio "
                         "baseline explicitly")
    return float(features.flatten()[0])


def silence_features(input_features: Tensor, processor: Any = None) -> Tensor:
    """The features of silence shaped like ``input_features``, as ``processor``'s
    feature extractor (or a default ``ClapFeatureExtractor``) makes them: a constant, the
    log-mel floor.

    Example:
        >>> silence_features(torch.zeros(1, 1, 10, 64))[0, 0, 0, :3]   # 10 log10 of the mel floor 1e-10
        tensor([-100., -100., -100.])
    """
    extractor = getattr(processor, "feature_extractor", processor)
    if extractor is None:
        level = _silence_of_default_extractor(int(input_features.shape[-1]))
    else:
        import numpy as np

        rate = extractor.sampling_rate
        level = _constant(extractor(np.zeros(rate // 10), sampling_rate=rate, return_tensors="pt")["input_features"])
    return torch.full_like(input_features, level)


def layer_lists(model: Any) -> Tuple[Any, Any]:
    """The text tower's RoBERTa layers and the audio tower's HTSAT stages.

    Example:
        >>> from transformers import ClapConfig, ClapModel
        >>> audio = dict(spec_size=64, depths=[1, 1], num_attention_heads=[2, 2], hidden_size=32,
        ...              patch_embeds_hidden_size=16, num_mel_bins=16, window_size=4)
        >>> model = ClapModel(ClapConfig(text_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        ...                                               intermediate_size=64), audio_config=audio))
        >>> [len(layers) for layers in layer_lists(model)]
        [1, 2]
    """
    return model.text_model.encoder.layer, model.audio_model.audio_encoder.layers


def sides(model: Any, image_mean: Optional[Sequence[float]], image_std: Optional[Sequence[float]],
          processor: Any) -> Dict[str, Any]:
    """The DualEncoder arguments of a CLAP model (``image_mean`` / ``image_std`` do not apply).

    Example:
        >>> from transformers import ClapConfig, ClapModel
        >>> audio = dict(spec_size=64, depths=[1, 1], num_attention_heads=[2, 2], hidden_size=32,
        ...              patch_embeds_hidden_size=16, num_mel_bins=16, window_size=4)
        >>> model = ClapModel(ClapConfig(text_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        ...                                               intermediate_size=64), audio_config=audio))
        >>> sides(model, None, None, None)["check_b"]((torch.zeros(1, 1, 100, 64),), None, ())
        Traceback (most recent call last):
        ...
        ValueError: inputs[1]: expected CLAP input_features as ClapFeatureExtractor gives them, a float Tensor (batch, 1, frames, 16); got (1, 1, 100, 64)
    """
    audio_config = model.config.audio_config
    mel_bins = audio_config.num_mel_bins
    channels = (4,) if getattr(audio_config, "enable_fusion", False) else (1,)

    def check_audio(inputs: Tuple[Tensor, ...], baselines: Optional[Tuple[Tensor, ...]], extra: Tuple[Any, ...]) -> None:
        check_argument_count(extra, ("is_longer",), 1, "audio")
        for name, values in (("inputs[1]", inputs), ("baselines[1]", baselines)):
            features = values[0] if values else None
            if features is None and name == "baselines[1]":
                continue
            if (not isinstance(features, Tensor) or not torch.is_floating_point(features) or features.dim() != 4
                    or features.shape[1] not in channels or features.shape[-1] != mel_bins):
                shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
                raise ValueError(
                    f"{name}: expected CLAP input_features as ClapFeatureExtractor gives them, a float Tensor (batch, "
                    f"{' or '.join(map(str, channels))}, frames, {mel_bins}); got {shape}"
                )

    return dict(
        **text_side(model, model.config.text_config),
        encode_b=features_function(model.get_audio_features, "input_features", ("is_longer",), 1),
        reference_b=lambda inputs, extra: (silence_features(inputs[0], processor),),
        check_b=check_audio,
        towers=(model.text_model, model.audio_model),
    )
