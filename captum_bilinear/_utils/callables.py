"""Reading what user callables take and return."""

import functools
import types
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

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


def _code_objects(code: types.CodeType) -> List[types.CodeType]:
    """``code`` and the code of the lambdas, comprehensions and functions defined in it."""
    found = [code]
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            found.extend(_code_objects(constant))
    return found


def _referenced_globals(function: types.FunctionType) -> List[Any]:
    """The values of the global names ``function``'s code (nested code included) reads."""
    namespace: Dict[str, Any] = function.__globals__
    names: List[str] = []
    for code in _code_objects(function.__code__):
        names.extend(name for name in code.co_names if name not in names)
    return [namespace[name] for name in names if name in namespace]


def modules_behind(function: Any, _seen: Optional[Set[int]] = None) -> List[nn.Module]:
    """The modules an encode function visibly runs: itself, the owner of a bound method,
    those inside a functools.partial, those a closure captures, and the module-level
    modules its code refers to by name (``encoder`` in ``def encode(x): return
    encoder(x)``), following plain functions it calls the same way.

    Modules reached only through other objects (an attribute of a non-module, a
    dictionary) are not found; pass them to :class:`~captum_bilinear.DualEncoder` as
    ``modules=``."""
    seen = set() if _seen is None else _seen
    if id(function) in seen:
        return []
    seen.add(id(function))
    if isinstance(function, nn.Module):
        return [function]
    owner = getattr(function, "__self__", None)
    if isinstance(owner, nn.Module):
        return [owner]
    if isinstance(function, functools.partial):
        found = modules_behind(function.func, seen)
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
        elif isinstance(content, types.FunctionType):
            found.extend(modules_behind(content, seen))
    if isinstance(function, types.FunctionType):
        for value in _referenced_globals(function):
            if isinstance(value, nn.Module):
                found.append(value)
            elif isinstance(value, types.FunctionType):
                found.extend(modules_behind(value, seen))
    return found


def unique_modules(modules: List[nn.Module]) -> List[nn.Module]:
    """``modules`` without repeats (by identity), in their first order."""
    unique: List[nn.Module] = []
    for module in modules:
        if not any(module is known for known in unique):
            unique.append(module)
    return unique


def calls_with(function: Callable[..., Any], count: int) -> bool:
    """Whether ``function`` accepts ``count`` positional arguments."""
    import inspect

    try:
        inspect.signature(function).bind(*range(count))
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): assume it does
        return True
    return True
