"""Reading what user callables take and return."""

import functools
from typing import Any, List, Tuple

from torch import Tensor, nn


def as_tuple(value: Any) -> Tuple[Any, ...]:
    """``()`` for None, the tuple itself for a tuple or list, else a one-element tuple."""
    if value is None:
        return ()
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,)


def embedding_of(output: Any, name: str = "encode_a/encode_b") -> Tensor:
    """The ``(batch, D)`` embedding in an encoder's output: the tensor itself, or the
    ``pooler_output`` of a transformers 5.x ``BaseModelOutputWithPooling``; ``name``
    names the encoder in the error for anything else."""
    if isinstance(output, Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if isinstance(pooled, Tensor):
        return pooled
    raise TypeError(
        f"{name}: expected the encoder to return a (batch, D) Tensor or an output with a pooler_output "
        f"Tensor, got {type(output).__name__}"
    )


def modules_behind(function: Any) -> List[nn.Module]:
    """The modules an encode function visibly runs: itself, the owner of a bound method,
    those inside a functools.partial, or those a closure captures."""
    if isinstance(function, nn.Module):
        return [function]
    owner = getattr(function, "__self__", None)
    if isinstance(owner, nn.Module):
        return [owner]
    if isinstance(function, functools.partial):
        found = modules_behind(function.func)
        for argument in (*function.args, *function.keywords.values()):
            if isinstance(argument, nn.Module):
                found.append(argument)
        return found
    found = []
    for cell in getattr(function, "__closure__", None) or ():
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(content, nn.Module):
            found.append(content)
    return found
