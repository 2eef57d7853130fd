"""DualEncoder: the modules behind module-level encode functions are found (dropout off
during a call, train flags restored), or a warning says they cannot be; an adapter's
attribution context is entered by every method; the names encoders.py exported before
the adapters moved still import."""

import types
import warnings

import pytest
import torch
from conftest import caption, clip_layers, make_clip

from captum_bilinear import (
    BilinearIntegratedInteractions,
    DualEncoder,
    InteractionCAM,
    InteractionLIME,
    WeightedBanzhafInteractions,
)

torch.manual_seed(0)
TEXT = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Tanh(), torch.nn.Linear(8, 6))
IMAGE = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.5), torch.nn.Tanh(), torch.nn.Linear(8, 6))
HOLDER = types.SimpleNamespace(text=TEXT, image=IMAGE)


def encode_text(x):
    return TEXT(x).mean(1)


def encode_image(x):
    return IMAGE(x).mean(1)


def encode_text_via_an_object(x):
    return HOLDER.text(x).mean(1)


def encode_image_via_an_object(x):
    return HOLDER.image(x).mean(1)


def _pair():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(1, 5, 4, generator=generator), torch.randn(1, 7, 3, generator=generator)


def test_module_level_functions_run_in_eval_mode_and_train_flags_are_restored():
    TEXT.train(), IMAGE.train()
    model = DualEncoder(encode_text, encode_image)
    bii = BilinearIntegratedInteractions(model, (TEXT[0], IMAGE[0]))
    first, delta = bii.attribute(_pair(), n_steps=16, return_convergence_delta=True)
    second = bii.attribute(_pair(), n_steps=16)
    torch.testing.assert_close(first, second, rtol=0, atol=0)  # dropout was off: identical calls agree
    assert delta.abs().max() < 1e-5
    assert TEXT.training and IMAGE.training and TEXT[1].training and IMAGE[1].training
    # the oracle: the same call with the modules put in eval mode by hand
    TEXT.eval(), IMAGE.eval()
    try:
        in_eval = BilinearIntegratedInteractions(DualEncoder(encode_text, encode_image), (TEXT[0], IMAGE[0]))
        torch.testing.assert_close(first, in_eval.attribute(_pair(), n_steps=16), rtol=0, atol=0)
    finally:
        TEXT.train(), IMAGE.train()


def test_modules_that_cannot_be_seen_are_warned_about_and_can_be_passed():
    with pytest.warns(UserWarning, match=r"no torch modules found behind encode_a / encode_b.*modules=\[\.\.\.\]"):
        unseen = DualEncoder(encode_text_via_an_object, encode_image_via_an_object)
    assert not unseen.knows_its_modules
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = DualEncoder(encode_text_via_an_object, encode_image_via_an_object, modules=[TEXT, IMAGE])
        DualEncoder(lambda x: x.sum(1), lambda x: x.sum(1), modules=())
    assert model.knows_its_modules
    TEXT.train(), IMAGE.train()
    bii = BilinearIntegratedInteractions(model, (TEXT[0], IMAGE[0]))
    torch.testing.assert_close(bii.attribute(_pair(), n_steps=8), bii.attribute(_pair(), n_steps=8), rtol=0, atol=0)
    assert TEXT.training and IMAGE.training
    with pytest.raises(ValueError, match=r"layer\[1\]: this Linear is not a module of the model"):
        BilinearIntegratedInteractions(model, (TEXT[0], torch.nn.Linear(3, 8)))
    with pytest.raises(TypeError, match="modules: expected a list of torch.nn.Module"):
        DualEncoder(encode_text, encode_image, modules=TEXT)


@pytest.mark.parametrize(
    "method, options",
    [
        (BilinearIntegratedInteractions, dict(n_steps=2)),
        (InteractionCAM, {}),
        (InteractionLIME, dict(n_samples=64, random_state=0)),
        (WeightedBanzhafInteractions, dict(budget=128, random_state=0)),
    ],
)
def test_every_method_runs_inside_the_attribution_context(method, options):
    events = []

    class Recorder:
        def __enter__(self):
            events.append("enter")

        def __exit__(self, *exc):
            events.append("exit")

    def inside(x):
        assert events and events[-1] == "enter", "encoder ran outside the attribution context"
        return TEXT(x).mean(1)

    model = DualEncoder(inside, encode_image, modules=[TEXT], attribution_context=Recorder)
    method(model, (TEXT[0], IMAGE[0])).attribute(_pair(), **options)
    assert events == ["enter", "exit"]


def test_the_default_attribution_context_does_nothing():
    model = DualEncoder(encode_text, encode_image)
    with model.attribution_context() as value:
        assert value is None


def test_checks_with_two_arguments_still_work():
    seen = []
    model = DualEncoder(encode_text, encode_image, check_a=lambda inputs, baselines: seen.append(len(inputs)))
    BilinearIntegratedInteractions(model, (TEXT[0], IMAGE[0])).attribute(_pair(), n_steps=2)
    assert seen == [1]


def test_names_importable_from_encoders_as_before(pixels):
    from captum_bilinear.encoders import DualEncoder as Dual, as_dual_encoder, is_supported_hf_model

    model = make_clip()
    assert is_supported_hf_model(model) and not is_supported_hf_model(torch.nn.Linear(2, 2))
    wrapped = as_dual_encoder(model)
    assert isinstance(wrapped, Dual) and as_dual_encoder(wrapped) is wrapped
    A = BilinearIntegratedInteractions(wrapped, clip_layers(model)).attribute((caption(320, 1125), pixels), n_steps=2)
    assert A.shape == (1, 4, 17)


def test_encoders_imports_no_adapter():
    """The circle encoders -> adapters -> encoders is gone: nothing in encoders.py imports
    the adapters (as_dual_encoder lives in captum_bilinear.adapters) but the module
    ``__getattr__`` that resolves the old import path on first use, and loading
    encoders.py loads no adapter."""
    import ast
    import subprocess
    import sys

    import captum_bilinear.encoders as encoders

    with open(encoders.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    compatibility = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "__getattr__"]
    allowed = {id(node) for function in compatibility for node in ast.walk(function)}
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in allowed]
    names = [alias.name for node in imports for alias in node.names] + [
        node.module or "" for node in imports if isinstance(node, ast.ImportFrom)]
    assert not [name for name in names if "adapters" in name]
    code = ("import sys, captum_bilinear.encoders; "
            "print(sorted(m for m in sys.modules if m.startswith('captum_bilinear.adapters')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    from captum_bilinear.adapters import as_dual_encoder

    assert encoders.as_dual_encoder is as_dual_encoder
