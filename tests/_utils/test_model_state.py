"""The model and the process as they were: eval mode during a call, an encoder's
attribution context entered, and process-wide flags held safely across threads."""

import threading

import pytest
import torch

from captum_bilinear._utils.forward_mode import forward_mode_section as forward_mode_attention
from captum_bilinear._utils.model_state import ProcessFlag, evaluation_mode, without_mha_fast_path


def test_evaluation_mode_enters_the_models_attribution_context_and_restores_training():
    events = []

    class WithContext(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dropout = torch.nn.Dropout(0.5)

        def attribution_context(self):
            events.append("enter")
            return _Recorder(events)

    model = WithContext().train()
    with pytest.raises(RuntimeError, match="boom"):
        with evaluation_mode(model):
            assert not model.dropout.training and events == ["enter"]
            raise RuntimeError("boom")
    assert events == ["enter", "exit"] and model.dropout.training


class _Recorder:
    def __init__(self, events):
        self.events = events

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.events.append("exit")
        return False


def test_a_process_flag_is_restored_by_the_last_of_overlapping_holders():
    state = {"value": True}
    flag = ProcessFlag(lambda: state["value"], lambda value: state.update(value=value))
    inside_first, release_first, seen = threading.Event(), threading.Event(), []

    def first():
        with flag.held(False):
            inside_first.set()
            release_first.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    inside_first.wait(5)
    with flag.held(False):
        release_first.set()
        thread.join(5)  # the first holder leaves while the second is still inside
        seen.append(state["value"])
    assert seen == [False] and state["value"] is True


def test_a_process_flag_refuses_a_conflicting_value_and_keeps_a_users_setting():
    state = {"value": False}
    flag = ProcessFlag(lambda: state["value"], lambda value: state.update(value=value))
    with flag.held(True):
        with pytest.raises(RuntimeError, match="a concurrent call holds this setting at True"):
            with flag.held(False):
                pass
        assert state["value"] is True
    assert state["value"] is False


def test_multihead_attention_takes_its_composite_path_inside():
    attention = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(1, 3, 8)
    with torch.no_grad(), forward_mode_attention(), pytest.raises(NotImplementedError, match="_native_multi_head_attention"):
        torch.func.jvp(lambda y: attention(y, y, y, need_weights=False)[0], (x,), (torch.ones_like(x),))
    # the composite path's SDPA needs the math kernel in forward mode, as every JVP here has it
    with torch.no_grad(), without_mha_fast_path(), forward_mode_attention():
        _, tangent = torch.func.jvp(lambda y: attention(y, y, y, need_weights=False)[0], (x,), (torch.ones_like(x),))
    assert torch.isfinite(tangent).all() and torch.backends.mha.get_fastpath_enabled()


def _run_in_threads(call, count):
    results, errors = {}, []

    def run(index):
        try:
            results[index] = call()
        except Exception as error:  # reported by the caller
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return [results[index] for index in sorted(results)], errors


@pytest.mark.parametrize("method_name", ["BilinearIntegratedInteractions", "InteractionCAM"])
def test_one_model_attributed_from_three_threads_gives_each_its_result_alone(method_name):
    """Two calls on one model at once used to see each other's layer hooks ("the module is
    called more than once") and restore each other's train flags; now a second call waits."""
    import captum_bilinear
    from conftest import caption, clip_layers, make_clip

    model = make_clip(dtype=torch.float64).train()  # a training model: eval during each call, train after
    torch.manual_seed(0)
    inputs = (caption(320, 1125, 539), torch.randn(1, 3, 32, 32, dtype=torch.float64))
    options = dict(n_steps=8) if method_name == "BilinearIntegratedInteractions" else {}
    method = getattr(captum_bilinear, method_name)
    alone = method(model, clip_layers(model, 0)).attribute(inputs, **options)
    results, errors = _run_in_threads(lambda: method(model, clip_layers(model, 0)).attribute(inputs, **options), 3)
    assert not errors and len(results) == 3
    for result in results:
        torch.testing.assert_close(result, alone, rtol=1e-12, atol=1e-14)
    assert all(module.training for module in model.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_second_call_on_one_model_waits_and_another_model_does_not():
    from captum_bilinear._utils.model_state import one_call_per_model

    shared, other = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    wrapper = torch.nn.ModuleList([shared])  # another wrapper around the same model
    inside_first, release_first = threading.Event(), threading.Event()
    entered = {}

    def first():
        with one_call_per_model(shared):
            inside_first.set()
            release_first.wait(10)

    def enter(name, model):
        with one_call_per_model(model):
            entered[name] = release_first.is_set()

    holder = threading.Thread(target=first)
    holder.start()
    inside_first.wait(10)
    waiting = threading.Thread(target=enter, args=("same model", wrapper))
    waiting.start()
    enter("other model", other)  # does not wait for the first call
    waiting.join(0.2)
    assert entered == {"other model": False} and waiting.is_alive()
    release_first.set()
    waiting.join(10)
    holder.join(10)
    assert entered == {"other model": False, "same model": True}
