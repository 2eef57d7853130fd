"""The public API as DESIGN.md §5 and the issues write it: the calls run verbatim, and the
documented positional order of every method's arguments holds (a user passing
``random_state`` sixth must not hit another parameter)."""

import inspect

import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from captum_bilinear import (
    BilinearIntegratedInteractions,
    DualEncoder,
    IntegratedJacobians,
    InteractionCAM,
    InteractionLIME,
    TokenPatchSimilarity,
    WeightedBanzhafInteractions,
)

from conftest import BOS, EOS, PAD, _small, features


def _normalized(embedding):
    return embedding / embedding.norm(dim=-1, keepdim=True)


def test_design_call_on_a_vit_b32_geometry():
    """The §5 call, verbatim, on a CLIP with ViT-B/32's geometry (224 px, 32 px patches:
    CLS + 49 positions) and a 12-token caption: A is (1, 12, 50) and A.sum - delta is the
    four-term identity computed from the HF model directly."""
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=_small(), vision_config=dict(_small(), image_size=224, patch_size=32),
                                 projection_dim=16)).eval()
    input_ids = torch.tensor([[BOS, *range(300, 310), EOS]])
    pixel_values = torch.randn(1, 3, 224, 224)
    ref_ids = torch.tensor([[BOS] + [PAD] * 10 + [EOS]])
    ref_pixels = torch.randn(1, 3, 224, 224) * 0.1

    layer = (model.text_model.encoder.layers[-2], model.vision_model.encoder.layers[-2])
    bii = BilinearIntegratedInteractions(model, layer)
    A, delta = bii.attribute(
        inputs=(input_ids, pixel_values),
        baselines=(ref_ids, ref_pixels),
        additional_forward_args=None,
        n_steps=50, method="gausslegendre",
        internal_batch_size=None,
        return_convergence_delta=True,
    )
    assert A.shape == (1, 12, 50) and delta.shape == (1,)

    with torch.no_grad():
        def similarity(ids, pixels):
            text = _normalized(features(model.get_text_features(input_ids=ids)))
            image = _normalized(features(model.get_image_features(pixel_values=pixels)))
            return (text * image).sum(-1)

        identity = (similarity(input_ids, pixel_values) - similarity(ref_ids, pixel_values)
                    - similarity(input_ids, ref_pixels) + similarity(ref_ids, ref_pixels))
    torch.testing.assert_close(A.sum((1, 2)) - delta, identity, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(A.sum((1, 2)), identity, rtol=1e-5, atol=1e-6)


def test_dual_encoder_signature_as_designed():
    parameters = list(inspect.signature(DualEncoder).parameters.values())
    assert [p.name for p in parameters[:4]] == ["encode_a", "encode_b", "normalize", "scale"]
    assert parameters[2].default is True and parameters[3].default == 1.0


ATTRIBUTE_METHODS = [
    (BilinearIntegratedInteractions.attribute,
     {"additional_forward_args": None, "n_steps": 50, "method": "gausslegendre", "internal_batch_size": None,
      "return_convergence_delta": False, "attribute_to_layer_input": False}),
    (IntegratedJacobians.attribute, {"additional_forward_args": None, "n_steps": 50, "method": "gausslegendre"}),
    (InteractionCAM.attribute, {"additional_forward_args": None}),
    (InteractionLIME.attribute, {"additional_forward_args": None, "n_samples": None, "alpha": 0.01,
                                 "random_state": None}),
    (TokenPatchSimilarity.attribute, {"additional_forward_args": None}),
    (WeightedBanzhafInteractions.attribute, {"additional_forward_args": None, "budget": None, "intra_modal": False,
                                             "random_state": None}),
    (WeightedBanzhafInteractions.attribute_terms, {"additional_forward_args": None, "budget": None,
                                                   "intra_modal": False, "random_state": None}),
    (InteractionLIME.attribute_terms, {"additional_forward_args": None, "n_samples": None}),
    (TokenPatchSimilarity.attribute_terms, {"additional_forward_args": None}),
    (BilinearIntegratedInteractions.attribute_terms,
     {"additional_forward_args": None, "n_steps": 50, "method": "gausslegendre", "internal_batch_size": None,
      "attribute_to_layer_input": False}),
    (InteractionCAM.attribute_terms, {"additional_forward_args": None, "internal_batch_size": None,
                                      "attribute_to_layer_input": False}),
]


def test_every_public_attribute_and_attribute_terms_has_its_signature_checked():
    import captum_bilinear

    classes = [getattr(captum_bilinear, name) for name in captum_bilinear.__all__]
    public = {getattr(cls, name) for cls in classes if inspect.isclass(cls)
              for name in ("attribute", "attribute_terms") if hasattr(cls, name)}
    assert InteractionCAM.attribute_terms in public and len(public) >= len(ATTRIBUTE_METHODS)
    assert public - {method for method, _ in ATTRIBUTE_METHODS} == set()


@pytest.mark.parametrize("method, keywords", ATTRIBUTE_METHODS, ids=lambda value: getattr(value, "__qualname__", ""))
def test_one_signature_shape(method, keywords):
    """attribute(inputs, baselines=None, *, additional_forward_args=None, ...) for every method."""
    parameters = list(inspect.signature(method).parameters.values())[1:]  # without self
    assert [(p.name, p.kind, p.default) for p in parameters[:2]] == [
        ("inputs", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("baselines", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
    ]
    assert all(p.kind == inspect.Parameter.KEYWORD_ONLY for p in parameters[2:])
    defaults = {p.name: p.default for p in parameters}
    assert {name: defaults.get(name, "missing") for name in keywords} == keywords


@pytest.mark.parametrize("method", [method for method, _ in ATTRIBUTE_METHODS],
                         ids=lambda value: getattr(value, "__qualname__", ""))
def test_every_method_takes_feature_mask(method):
    """One name for groups of positions as players across the package's methods."""
    parameter = inspect.signature(method).parameters.get("feature_mask")
    assert parameter is not None and parameter.kind == inspect.Parameter.KEYWORD_ONLY and parameter.default is None


@pytest.mark.parametrize(
    "cls, keywords",
    [(BilinearIntegratedInteractions, {}), (InteractionCAM, {}), (InteractionLIME, {}),
     (WeightedBanzhafInteractions, {"p": 0.5}), (TokenPatchSimilarity, {"variant": "output"})],
)
def test_constructed_from_model_and_layer(cls, keywords):
    parameters = list(inspect.signature(cls).parameters)
    assert parameters[:2] == ["model", "layer"]
    assert set(keywords) <= set(parameters)
