"""Leaving the user's model, and the process, as they were."""

import functools
import threading
import weakref
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Dict, Iterator, List, Tuple

import torch
from torch import nn

#: One re-entrant lock per module that an attribution call has used (weakly held: a
#: model's locks go with it).
_MODULE_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_MODULE_LOCKS_GUARD = threading.Lock()


@contextmanager
def one_call_per_model(model: nn.Module) -> Iterator[None]:
    """Runs the block while no other thread runs one on a model sharing a module with
    ``model``; such a call waits until this one has left. Models with no module in common
    run concurrently.

    An attribution call registers hooks on the model's layers and sets its train flags:
    two calls on one model at once would see each other's hooks ("the module is called
    more than once") and restore each other's flags. The locks are taken in one global
    order (by ``id``), so two calls never wait on each other.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 2)
        >>> with one_call_per_model(model), one_call_per_model(model):  # re-entrant
        ...     model(torch.ones(1, 2)).shape
        torch.Size([1, 2])
    """
    modules = {id(module): module for module in model.modules()}
    with _MODULE_LOCKS_GUARD:
        locks: List[threading.RLock] = []
        for key in sorted(modules):
            lock = _MODULE_LOCKS.get(modules[key])
            if lock is None:
                lock = _MODULE_LOCKS[modules[key]] = threading.RLock()
            locks.append(lock)
    with ExitStack() as stack:
        for lock in locks:
            stack.enter_context(lock)
        yield


def outside_inference_mode(value: Any) -> Any:
    """``value`` with every tensor made inside ``torch.inference_mode()`` replaced by a
    normal copy (in tuples, lists and dicts too), so that autograd may use it; other
    tensors, and the user's own, are returned as they are.

    Example:
        >>> import torch
        >>> with torch.inference_mode():
        ...     made_inside = torch.ones(2)
        >>> copied = outside_inference_mode((made_inside, [made_inside]))
        >>> made_inside.is_inference(), copied[0].is_inference(), copied[1][0].is_inference()
        (True, False, False)
    """
    if isinstance(value, torch.Tensor):
        if not value.is_inference():
            return value
        with torch.inference_mode(False):
            return value.clone()
    if isinstance(value, tuple):
        items = [outside_inference_mode(item) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [outside_inference_mode(item) for item in value]
    if isinstance(value, dict):
        return {key: outside_inference_mode(item) for key, item in value.items()}
    return value


def check_differentiable(model: nn.Module, name: str = "model") -> None:
    """Refuses a model whose parameters or buffers were made inside
    ``torch.inference_mode()`` (loaded or built there): autograd cannot differentiate
    through them, and the user's model is not ours to copy.

    Example:
        >>> import torch
        >>> with torch.inference_mode():
        ...     layer = torch.nn.Linear(2, 2)
        >>> check_differentiable(layer)
        Traceback (most recent call last):
        ...
        ValueError: model: weight was made inside torch.inference_mode() (the model was loaded or built there), and gradients cannot flow through it; load or build the model outside inference mode
    """
    for label, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.is_inference():
            raise ValueError(
                f"{name}: {label} was made inside torch.inference_mode() (the model was loaded or built there), "
                "and gradients cannot flow through it; load or build the model outside inference mode"
            )


def leaves_inference_mode(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run outside ``torch.inference_mode()`` (what it builds -- a model it
    loads, the tensors it makes -- is then usable by autograd).

    Example:
        >>> import torch
        >>> @leaves_inference_mode
        ... def make():
        ...     return torch.ones(1)
        >>> with torch.inference_mode():
        ...     made = make()
        >>> made.is_inference()
        False
    """

    @functools.wraps(function)
    def outside(*args: Any, **kwargs: Any) -> Any:
        with torch.inference_mode(False):
            return function(*args, **kwargs)

    return outside


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[None]:
    """Runs the block with every submodule in eval mode (dropout off, so the path
    integrals are of one deterministic function) and inside the model's
    ``attribution_context()`` when it has one (a :class:`~captum_bilinear.DualEncoder`
    whose adapter switches off a kernel without forward-mode derivatives, say);
    afterwards, failures included, each module's train/eval flag and each parameter's
    ``requires_grad`` are as they were.

    The block runs outside ``torch.inference_mode()`` (where gradients are never
    recorded, even under ``torch.enable_grad()``, and gradient methods would silently
    give zeros) and as the only call on this model at the time (see
    :func:`one_call_per_model`)."""
    with one_call_per_model(model), torch.inference_mode(False):
        with _eval_flags(model):
            yield


@contextmanager
def _eval_flags(model: nn.Module) -> Iterator[None]:
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
            if parameter.requires_grad != required:  # (an inference tensor's flag cannot be set at all)
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
