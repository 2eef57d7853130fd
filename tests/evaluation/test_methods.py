"""The evaluation's method table against the registry, and the sampling methods' own
sizing against the sizes the committed evaluation was run with."""

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from captum_bilinear import InteractionLIME, WeightedBanzhafInteractions
from captum_bilinear.evaluation.methods import EVALUATION_METHODS, PairInputs, RunSettings
from captum_bilinear.registry import METHODS
from conftest import caption, clip_layers, make_clip


def test_interaction_methods_are_the_registrys():
    """Every interaction method of the evaluation is a registry method under the
    registry's name; the first-order ones are the only additions."""
    interaction = {method.short: method.name for method in EVALUATION_METHODS.values() if method.order == 2}
    assert interaction == {spec.short: spec.name for spec in METHODS.values()}
    first_order = {method.name for method in EVALUATION_METHODS.values() if method.order == 1}
    assert first_order == {"LayerIntegratedGradients", "LayerGradCam"}
    assert list(EVALUATION_METHODS)[:6] == ["BilinearIntegratedInteractions", "InteractionCAM", "InteractionLIME",
                                            "ITSM-O", "ITSM-H", "WeightedBanzhafInteractions"]


class _Built(Exception):
    pass


@pytest.mark.parametrize("short", sorted(METHODS))
def test_evaluation_builds_the_registrys_method(monkeypatch, short):
    """The evaluation builds each interaction method with the registry's ``make``."""
    built = []

    def make(model, layer):
        built.append((model, layer))
        raise _Built

    monkeypatch.setitem(METHODS, short, dataclasses.replace(METHODS[short], make=make))
    bundle = SimpleNamespace(model="model", layers="layers", input_layers="input layers")
    with pytest.raises(_Built):
        EVALUATION_METHODS[METHODS[short].name].explain(bundle, None, RunSettings(seed=0, n_steps=4))
    expected = "input layers" if METHODS[short].masks_inputs else "layers"
    assert built == [("model", expected)]


@pytest.fixture(scope="module")
def small_pair():
    model = make_clip(seed=3)
    input_ids = caption(320, 1125, 539)
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pair = PairInputs(input_ids, torch.ones_like(input_ids), pixels, None, None, torch.tensor([1, 2, 3]))
    embeddings = (model.text_model.embeddings, model.vision_model.embeddings)
    bundle = SimpleNamespace(model=model, layers=clip_layers(model), input_layers=embeddings,
                             image_players=torch.arange(1, 17), image_positions=17)
    return bundle, pair


def test_interaction_lime_sizes_itself_as_the_committed_run(small_pair):
    """The evaluation's InteractionLIME is the one it ran with ``n_samples=max(1000,
    minimum_samples(positions))``."""
    bundle, pair = small_pair
    terms = EVALUATION_METHODS["InteractionLIME"].explain(bundle, pair, RunSettings(seed=5, n_steps=4))
    samples = max(1000, InteractionLIME.minimum_samples(pair.input_ids.shape[1], bundle.image_positions))
    before = InteractionLIME(bundle.model, bundle.input_layers).attribute_terms(
        pair.inputs, additional_forward_args=pair.extra, n_samples=samples, random_state=5)
    assert torch.equal(terms.cross, before.cross)
    assert terms.settings["samples"] == before.settings["samples"]


def test_fixlip_sizes_itself_as_the_committed_run(small_pair):
    """The evaluation's FIxLIP is the one it ran with ``budget=2**12`` and p = 0.5."""
    bundle, pair = small_pair
    terms = EVALUATION_METHODS["WeightedBanzhafInteractions"].explain(bundle, pair, RunSettings(seed=5, n_steps=4))
    before = WeightedBanzhafInteractions(bundle.model, bundle.input_layers, p=0.5).attribute_terms(
        pair.inputs, additional_forward_args=pair.extra, budget=2**12, random_state=5,
        players=(pair.players_a, bundle.image_players))
    assert torch.equal(terms.cross, before.cross) and torch.equal(terms.first_a, before.first_a)
    assert terms.settings["samples"] == before.settings["samples"] and terms.settings["p"] == 0.5
