"""Placeholder until the robustness branch lands (thread-safe forward-mode section)."""

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def forward_mode_section() -> Iterator[None]:
    """SDPA's fused CPU kernels have no forward-mode derivative; the math kernel does."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3
        yield
        return
    with sdpa_kernel(SDPBackend.MATH):
        yield
