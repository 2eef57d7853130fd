"""The most quadrature nodes per path integral, in a module of its own: the command
line's argument types refuse more than the library does without importing torch.

:data:`MAX_STEPS` is far above what fixed rules need (the demo model's pairs need 16--64
Gauss-Legendre nodes, and ``n_steps="auto"`` stops at 1024 by default); it refuses absurd
values before any work (numpy's Gauss-Legendre nodes for ``n`` take ``8 n^2`` bytes:
10**9 ran out of memory after two minutes, and Captum's LayerIntegratedGradients, which
the first-order maps use, has no limit of its own).
"""

MAX_STEPS = 4096


def check_step_limit(n_steps: int) -> None:
    """A ``ValueError`` naming ``n_steps`` above :data:`MAX_STEPS`.

    Example:
        >>> check_step_limit(10**9)
        Traceback (most recent call last):
        ...
        ValueError: n_steps: expected at most 4096 nodes per path integral, got 1000000000 (n_steps='auto' chooses the nodes for a tolerance)
    """
    if n_steps > MAX_STEPS:
        raise ValueError(f"n_steps: expected at most {MAX_STEPS} nodes per path integral, got {n_steps} "
                         "(n_steps='auto' chooses the nodes for a tolerance)")
