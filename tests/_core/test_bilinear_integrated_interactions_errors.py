"""Bad input is refused with an error naming the argument, before heavy work, and
every call -- failed ones included -- leaves the model as it was."""

import pytest
import torch
from conftest import BOS, EOS, PAD, caption, clip_layers, make_clip

from captum_bilinear import BilinearIntegratedInteractions, DualEncoder


def hooks_of(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.fixture
def setup(pixels):
    model = make_clip()
    return model, BilinearIntegratedInteractions(model, clip_layers(model)), caption(320, 1125, 539), pixels


def test_layer_not_in_model():
    model, other = make_clip(), make_clip(seed=1)
    with pytest.raises(ValueError, match=r"layer\[1\].*not a module of the model"):
        BilinearIntegratedInteractions(model, (model.text_model.encoder.layers[0], other.vision_model.encoder.layers[0]))


def test_layer_not_a_pair():
    model = make_clip()
    with pytest.raises(TypeError, match="layer: expected a pair"):
        BilinearIntegratedInteractions(model, [model.text_model.encoder.layers[0]])


def test_unsupported_model():
    with pytest.raises(TypeError, match=r"model: expected a transformers dual encoder \(CLIPModel, "):
        BilinearIntegratedInteractions(torch.nn.Linear(2, 2), (torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)))


def test_layer_never_called(setup):
    # a DualEncoder of one's own knows no towers: the layer is found unused during the pass
    # (a wrapped HF model refuses a layer of the other tower before it: tests/adapters)
    model, _, ids, pixels = setup
    dual = DualEncoder(model.get_text_features, model.get_image_features)
    bii = BilinearIntegratedInteractions(dual, (model.text_model.encoder.layers[0], model.text_model.encoder.layers[1]))
    with pytest.raises(ValueError, match=r"layer\[1\]: the encoder of this side never calls this module"):
        bii.attribute((ids, pixels))
    assert hooks_of(model) == 0


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(n_steps=0), ValueError, "n_steps: method 'gausslegendre' needs n_steps >= 1"),
        (dict(n_steps=1, method="riemann_left"), ValueError, "n_steps: method 'riemann_left' needs n_steps >= 2"),
        (dict(n_steps=2.5), TypeError, "n_steps: expected an int"),
        (dict(method="simpson"), ValueError, "method: expected one of"),
        (dict(internal_batch_size=0), ValueError, "internal_batch_size"),
        (dict(attribute_to_layer_input="yes"), TypeError, "attribute_to_layer_input"),
    ],
)
def test_bad_settings(setup, kwargs, error, message):
    model, bii, ids, pixels = setup
    with pytest.raises(error, match=message):
        bii.attribute((ids, pixels), **kwargs)
    assert hooks_of(model) == 0


def test_inputs_not_a_pair(setup):
    _, bii, ids, _ = setup
    with pytest.raises(TypeError, match=r"inputs: expected a pair"):
        bii.attribute(ids)


def test_batch_sizes_differ_between_sides(setup):
    _, bii, ids, pixels = setup
    with pytest.raises(ValueError, match=r"inputs: the batch sizes differ between side a \(2\) and side b \(1\)"):
        bii.attribute((ids.repeat(2, 1), pixels))


def test_batch_sizes_differ_between_inputs_and_baselines(setup):
    _, bii, ids, pixels = setup
    with pytest.raises(ValueError, match=r"baselines\[1\]: baseline 0 has shape \(3, 3, 32, 32\)"):
        bii.attribute((ids.repeat(2, 1), pixels.repeat(2, 1, 1, 1)), baselines=(None, torch.zeros(3, 3, 32, 32)))


def test_text_baseline_of_another_length(setup):
    _, bii, ids, pixels = setup
    with pytest.raises(ValueError, match=r"baselines\[0\]: baseline 0 has shape \(1, 4\)"):
        bii.attribute((ids, pixels), baselines=(torch.tensor([[BOS, PAD, PAD, EOS]]), None))


def test_text_baseline_with_eos_elsewhere(setup):
    _, bii, ids, pixels = setup
    with pytest.raises(ValueError, match=r"baselines\[0\]: the text baseline's EOS positions \[3\] differ from the input's \[4\]"):
        bii.attribute((ids, pixels), baselines=(torch.tensor([[BOS, PAD, PAD, EOS, EOS]]), None))


def test_caption_without_eos(setup):
    _, bii, _, pixels = setup
    with pytest.raises(ValueError, match=r"inputs\[0\]: input_ids row 0 has no EOS token"):
        bii.attribute((torch.tensor([[BOS, 320, 1125]]), pixels))


def test_integer_pixels(setup):
    _, bii, ids, _ = setup
    with pytest.raises(TypeError, match=r"inputs\[1\]: pixel_values must be a floating-point Tensor"):
        bii.attribute((ids, torch.zeros(1, 3, 32, 32, dtype=torch.uint8)))


def test_float_token_ids(setup):
    _, bii, ids, pixels = setup
    with pytest.raises(TypeError, match=r"inputs\[0\]: expected input_ids as a \(batch, length\) integer Tensor"):
        bii.attribute((ids.float(), pixels))


def test_model_state_is_restored_after_success_and_failure(pixels):
    model = make_clip()
    model.train()
    model.text_model.embeddings.requires_grad_(False)
    training = {name: m.training for name, m in model.named_modules()}
    requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
    bii = BilinearIntegratedInteractions(model, clip_layers(model))
    bii.attribute((caption(320, 1125), pixels), n_steps=2)
    # A failure in the middle of the computation: the image encoder breaks after the
    # text side has been captured.
    broken = model.vision_model.post_layernorm
    original_forward = broken.forward
    broken.forward = lambda x: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        bii.attribute((caption(320, 1125), pixels), n_steps=2)
    broken.forward = original_forward
    assert hooks_of(model) == 0
    assert {name: m.training for name, m in model.named_modules()} == training
    assert {name: p.requires_grad for name, p in model.named_parameters()} == requires_grad


def test_dual_encoder_with_unknown_modules_still_checks_the_layer_is_called():
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Flatten())
    stray = torch.nn.Linear(3, 4)
    model = DualEncoder(lambda x: globals()["_ENCODER"](x), lambda x: globals()["_ENCODER"](x))
    globals()["_ENCODER"] = encoder
    bii = BilinearIntegratedInteractions(model, (encoder[0], stray))
    with pytest.raises(ValueError, match=r"layer\[1\]: the encoder of this side never calls this module"):
        bii.attribute((torch.randn(1, 2, 3), torch.randn(1, 2, 3)))


def forward_calls(model):
    """A counter of module calls (pre-hooks on every module) and the hooks' handles."""
    calls = []
    handles = [m.register_forward_pre_hook(lambda module, args: calls.append(module)) for m in model.modules()]
    return calls, handles


@pytest.mark.parametrize("n_steps", [4, "auto"])
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_non_bool_return_convergence_delta_is_refused_before_any_forward_pass(setup, n_steps, value):
    """``"yes"`` is truthy: taken as a flag it would silently return a tuple. The library's
    flags refuse anything but True / False with a TypeError naming the argument
    (:func:`captum_bilinear._utils.checks.check_flag`)."""
    model, bii, ids, pixels = setup
    calls, handles = forward_calls(model)
    try:
        with pytest.raises(TypeError, match=r"^return_convergence_delta: expected True or False, got"):
            bii.attribute((ids, pixels), n_steps=n_steps, return_convergence_delta=value)
    finally:
        for handle in handles:
            handle.remove()
    assert calls == []
    assert hooks_of(model) == 0
