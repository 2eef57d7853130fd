"""Forward-mode sections: one thread at a time, SDPA on its math kernel inside, and the
process's SDPA flags as they were afterwards (nesting, threads and failures included).
Oracles: the flags read through torch's own public getters, a dual-number tangent
computed by hand, and each model's sequential results."""

import threading

import pytest
import torch
import torch.autograd.forward_ad as forward_ad
from conftest import caption, clip_layers, make_clip

from captum_bilinear import BilinearIntegratedInteractions
from captum_bilinear._utils.forward_mode import MATH_ONLY, forward_mode_section, sdpa_backends

pytestmark = pytest.mark.skipif(not MATH_ONLY, reason="torch < 2.3 has no sdpa_kernel flags to hold")


def public_flags():
    """The flags as torch's public API reports them (not through the module under test)."""
    cuda = torch.backends.cuda
    return dict(flash=cuda.flash_sdp_enabled(), mem_efficient=cuda.mem_efficient_sdp_enabled(),
                math=cuda.math_sdp_enabled(), cudnn=cuda.cudnn_sdp_enabled())


MATH_KERNEL_ONLY = dict(flash=False, mem_efficient=False, math=True, cudnn=False)


def test_the_flags_are_math_only_inside_and_restored_after_nesting():
    before = public_flags()
    assert before != MATH_KERNEL_ONLY  # torch's defaults enable the fused kernels: the check is not vacuous
    with forward_mode_section():
        with forward_mode_section():  # re-entrant in one thread
            assert public_flags() == MATH_KERNEL_ONLY
        assert public_flags() == MATH_KERNEL_ONLY  # the inner section left, the outer still holds them
    assert public_flags() == before


def test_the_flags_are_restored_after_an_exception():
    before = public_flags()
    with pytest.raises(RuntimeError, match="boom"):
        with forward_mode_section():
            raise RuntimeError("boom")
    assert public_flags() == before
    with forward_mode_section():  # and the lock was released
        pass


def test_a_users_own_setting_is_kept():
    torch.backends.cuda.enable_flash_sdp(False)
    try:
        expected = public_flags()
        with forward_mode_section():
            assert public_flags() == MATH_KERNEL_ONLY
        assert public_flags() == expected and not expected["flash"] and expected["mem_efficient"]
    finally:
        torch.backends.cuda.enable_flash_sdp(True)


def test_sections_of_two_threads_do_not_overlap_and_the_last_one_restores_the_flags():
    before = public_flags()
    first_inside, release_first, second_inside = threading.Event(), threading.Event(), threading.Event()
    observed = {}

    def first():
        with forward_mode_section():
            first_inside.set()
            release_first.wait(10)
            observed["first, before leaving"] = public_flags()

    def second():
        first_inside.wait(10)
        with forward_mode_section():
            second_inside.set()
            observed["second"] = public_flags()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_inside.wait(10)
    # The second thread waits for the first to leave (forward-AD levels are process-wide).
    assert not second_inside.wait(0.3)
    release_first.set()
    for thread in threads:
        thread.join(10)
    assert second_inside.is_set()
    assert observed == {"first, before leaving": MATH_KERNEL_ONLY, "second": MATH_KERNEL_ONLY}
    assert public_flags() == before


def test_dual_numbers_in_two_threads_give_their_tangents():
    """Without the lock, this fails in most runs ("Nested forward mode AD is not supported",
    "Trying to access a forward AD level with an invalid index")."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 16, dtype=torch.float64)
    errors, mismatches = [], []

    def run(seed):
        generator = torch.Generator().manual_seed(seed)
        try:
            for _ in range(200):
                x = torch.randn(4, 16, dtype=torch.float64, generator=generator)
                v = torch.randn(4, 16, dtype=torch.float64, generator=generator)
                with torch.no_grad(), forward_mode_section():
                    _, by_func = torch.func.jvp(lambda y: torch.tanh(layer(y)), (x,), (v,))
                    with forward_ad.dual_level():
                        dual = forward_ad.unpack_dual(torch.tanh(layer(forward_ad.make_dual(x, v)))).tangent
                with torch.no_grad():  # by hand: d tanh(Wx + b) = (1 - tanh^2) * W v
                    by_hand = (1 - torch.tanh(layer(x)) ** 2) * (v @ layer.weight.T)
                if not (torch.allclose(by_func, by_hand) and torch.allclose(dual, by_hand)):
                    mismatches.append(seed)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and not mismatches


def test_two_threads_running_bii_on_two_models_give_the_sequential_results(pixels):
    """Issue 11.7 through the public API (BilinearIntegratedInteractions enters
    forward_mode_section for its JVPs: 5 text positions < 16 embedding dimensions)."""
    models = [make_clip(seed=3, dtype=torch.float64), make_clip(seed=4, dtype=torch.float64)]
    methods = [BilinearIntegratedInteractions(model, clip_layers(model, 0)) for model in models]
    inputs = (caption(320, 1125, 539), pixels.to(torch.float64))
    before, before_raw = public_flags(), sdpa_backends()
    sequential = [method.attribute(inputs, n_steps=8) for method in methods]
    results, errors = [[], []], []

    def run(index):
        try:
            for _ in range(3):
                results[index].append(methods[index].attribute(inputs, n_steps=8))
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert not torch.allclose(sequential[0], sequential[1])  # two different models: the check is not vacuous
    for runs, expected in zip(results, sequential):
        assert len(runs) == 3
        for result in runs:
            torch.testing.assert_close(result, expected, rtol=1e-9, atol=1e-12)
    assert public_flags() == before and sdpa_backends() == before_raw
