"""Forward-mode AD sections that are safe to enter from several threads at once.

Two pieces of process-wide state stand in the way of concurrent forward-mode passes:

* PyTorch's forward-AD levels (``forward_ad.dual_level``, which ``torch.func.jvp`` also
  enters) are numbered process-wide: two threads entering and leaving levels at once
  make one of them fail with "Trying to access a forward AD level with an invalid
  index". Sections are therefore serialised by one process-wide (re-entrant) lock.
* SDPA's fused CPU kernels have no forward-mode derivative, its math kernel does, and
  the kernel switch (``torch.nn.attention.sdpa_kernel``) sets global flags, saved and
  restored by each caller: with two callers, the first to leave switches the flags back
  under the other, and the last restores what the first had set. The flags are held
  here through :class:`~captum_bilinear._utils.model_state.ProcessFlag` instead, which
  restores the user's setting when the last holder leaves.
"""

import threading
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Tuple

import torch

from captum_bilinear._utils.model_state import ProcessFlag

#: Serialises forward-mode sections across threads (re-entrant: sections may nest).
FORWARD_AD_LOCK = threading.RLock()


def _sdpa_switches() -> List[Tuple[str, Callable[[], bool], Callable[[bool], None]]]:
    """``(backend, get, set)`` for every SDPA backend flag that ``sdpa_kernel`` sets in
    this torch (torch 2.13: cudnn, flash, mem_efficient, math, overrideable); none
    before torch 2.3, where ``torch.nn.attention.sdpa_kernel`` does not exist."""
    try:
        from torch.nn.attention import sdpa_kernel  # noqa: F401  (torch >= 2.3)
    except ImportError:
        return []
    switches = []
    for backend in ("cudnn", "flash", "mem_efficient", "math", "overrideable"):
        # The public getters/setters of torch.backends.cuda cover all but
        # "overrideable"; torch._C has all five, under the names sdpa_kernel uses.
        get = getattr(torch._C, f"_get_{backend}_sdp_enabled", None)
        set_ = getattr(torch._C, f"_set_sdp_use_{backend}", None)
        if get is not None and set_ is not None:
            switches.append((backend, get, set_))
    return switches


_SWITCHES = _sdpa_switches()
#: Every SDPA backend flag off but the math kernel's.
MATH_ONLY: Tuple[bool, ...] = tuple(backend == "math" for backend, _, _ in _SWITCHES)


def sdpa_backends() -> Tuple[bool, ...]:
    """The SDPA backend flags, in the order of :data:`MATH_ONLY`.

    Example:
        >>> import torch
        >>> len(sdpa_backends()) == len(MATH_ONLY)
        True
    """
    return tuple(bool(get()) for _, get, _ in _SWITCHES)


def _set_sdpa_backends(flags: Tuple[bool, ...]) -> None:
    for (_, _, set_), enabled in zip(_SWITCHES, flags):
        set_(enabled)


#: The SDPA backend flags, held at :data:`MATH_ONLY` by forward-mode sections.
SDPA_BACKENDS: Optional[ProcessFlag] = ProcessFlag(sdpa_backends, _set_sdpa_backends) if _SWITCHES else None


@contextmanager
def math_attention() -> Iterator[None]:
    """SDPA restricted to its math kernel (which has forward-mode derivatives) while any
    thread is inside; the user's flags are back once the last one leaves. A no-op on
    torch < 2.3."""
    if SDPA_BACKENDS is None:
        yield
        return
    with SDPA_BACKENDS.held(MATH_ONLY):
        yield


@contextmanager
def forward_mode_section() -> Iterator[None]:
    """A block of forward-mode AD (``forward_ad.dual_level`` or ``torch.func.jvp``):
    one thread at a time (forward-AD levels are process-wide), SDPA on its math kernel.
    Failures included, the SDPA flags are as before once the last section has left.

    Example:
        >>> import torch
        >>> import torch.autograd.forward_ad as forward_ad
        >>> before = sdpa_backends()
        >>> with torch.no_grad(), forward_mode_section(), forward_ad.dual_level():
        ...     x = forward_ad.make_dual(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0]))
        ...     tangent = forward_ad.unpack_dual((x * x).sum()).tangent
        ...     inside = sdpa_backends() == MATH_ONLY
        >>> tangent, inside, sdpa_backends() == before
        (tensor(2.), True, True)
    """
    with FORWARD_AD_LOCK, math_attention():
        yield
