"""Leaving the user's model, and the process, as they were."""

import threading
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Tuple

from torch import nn


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[None]:
    """Runs the block with every submodule in eval mode (dropout off, so the path
    integrals are of one deterministic function) and inside the model's
    ``attribution_context()`` when it has one (a :class:`~captum_bilinear.DualEncoder`
    whose adapter switches off a kernel without forward-mode derivatives, say);
    afterwards, failures included, each module's train/eval flag and each parameter's
    ``requires_grad`` are as they were."""
    training = [(module, module.training) for module in model.modules()]
    requires_grad = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    context = getattr(model, "attribution_context", None)
    try:
        model.eval()
        if callable(context):
            with context():
                yield
        else:
            yield
    finally:
        for module, was_training in training:
            module.training = was_training
        for parameter, required in requires_grad:
            parameter.requires_grad_(required)


class ProcessFlag:
    """A process-wide setting (``get() -> value``, ``set(value)``) held at ``value``
    while any thread is inside :meth:`held`, and restored when the last one leaves.

    Concurrent calls share the override instead of each saving and restoring the
    setting: with save-and-restore, the first call to finish would switch the setting
    back under the feet of a call still running.

    Example:
        >>> state = {"fast": True}
        >>> fast = ProcessFlag(lambda: state["fast"], lambda value: state.update(fast=value))
        >>> with fast.held(False):
        ...     with fast.held(False):
        ...         inner = state["fast"]
        ...     still_held = state["fast"]
        >>> inner, still_held, state["fast"]
        (False, False, True)
    """

    def __init__(self, get: Callable[[], Any], set: Callable[[Any], None]) -> None:
        self._get = get
        self._set = set
        self._lock = threading.Lock()
        self._holders: Dict[Any, int] = {}
        self._saved: Tuple[Any, ...] = ()

    @contextmanager
    def held(self, value: Any) -> Iterator[None]:
        with self._lock:
            if self._holders and value not in self._holders:
                raise RuntimeError(f"a concurrent call holds this setting at {next(iter(self._holders))!r}")
            if not self._holders:
                self._saved = (self._get(),)
                self._set(value)
            self._holders[value] = self._holders.get(value, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._holders[value] -= 1
                if not self._holders[value]:
                    del self._holders[value]
                    self._set(self._saved[0])
                    self._saved = ()


def _mha_fast_path_flag() -> "ProcessFlag":
    import torch

    mha = torch.backends.mha
    return ProcessFlag(mha.get_fastpath_enabled, mha.set_fastpath_enabled)


#: ``torch.backends.mha``'s fast-path switch (one process-wide flag, so one holder of it).
#: ``nn.MultiheadAttention``'s fast path (``aten::_native_multi_head_attention``) has no
#: forward-mode derivative.
MHA_FAST_PATH = _mha_fast_path_flag()


def without_mha_fast_path() -> Any:
    """A context in which ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` take
    their composite path (differentiable in forward mode), safe to enter from several
    threads at once; the process-wide flag is as before once the last one leaves.

    Example:
        >>> import torch
        >>> with without_mha_fast_path():
        ...     inside = torch.backends.mha.get_fastpath_enabled()
        >>> inside, torch.backends.mha.get_fastpath_enabled()
        (False, True)
    """
    return MHA_FAST_PATH.held(False)
