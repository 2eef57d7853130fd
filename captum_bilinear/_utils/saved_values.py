"""Python values as JSON that reads back as the same values: what a saved file's
metadata holds (settings, labels, geometry).

Plain JSON turns a tuple into a list and cannot hold a tensor; here a tuple is written
as ``{"__tuple__": [...]}`` and a tensor (or numpy array) as ``{"__tensor__": key}``,
its data set aside in ``tensors[key]`` (a safetensors file beside the JSON keeps it
exactly). Floats are written with ``repr`` precision (JSON's ``NaN`` / ``Infinity``
included), so they read back bit for bit.
"""

from typing import Any, Dict

import numpy as np
import torch
from torch import Tensor

_TUPLE = "__tuple__"
_TENSOR = "__tensor__"


def to_json(value: Any, tensors: Dict[str, Tensor], key: str) -> Any:
    """``value`` as JSON-ready data; tensors go into ``tensors`` under names starting
    with ``key``. Raises ``TypeError`` naming ``key`` for a value JSON cannot hold.

    Example:
        >>> tensors = {}
        >>> to_json({"a": (1, 2.5), "b": torch.ones(2)}, tensors, "settings")
        {'a': {'__tuple__': [1, 2.5]}, 'b': {'__tensor__': 'settings.b'}}
        >>> list(tensors)
        ['settings.b']
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (Tensor, np.ndarray)):
        tensors[key] = torch.as_tensor(value).detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(value, tuple):
        return {_TUPLE: [to_json(item, tensors, f"{key}.{i}") for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [to_json(item, tensors, f"{key}.{i}") for i, item in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(name, str) for name in value):
            raise TypeError(f"{key}: only dicts with str keys can be saved, got keys {list(value)!r}")
        if _TUPLE in value or _TENSOR in value:
            raise TypeError(f"{key}: the keys {_TUPLE!r} and {_TENSOR!r} are reserved")
        return {name: to_json(item, tensors, f"{key}.{name}") for name, item in value.items()}
    raise TypeError(f"{key}: cannot save a {type(value).__name__} (expected None, bool, int, float, str, "
                    "list, tuple, dict with str keys, or a tensor)")


def from_json(data: Any, tensors: Dict[str, Tensor]) -> Any:
    """The value :func:`to_json` wrote.

    Example:
        >>> tensors = {}
        >>> from_json(to_json({"a": (1, [2.5])}, tensors, "s"), tensors)
        {'a': (1, [2.5])}
    """
    if isinstance(data, list):
        return [from_json(item, tensors) for item in data]
    if isinstance(data, dict):
        if set(data) == {_TUPLE}:
            return tuple(from_json(item, tensors) for item in data[_TUPLE])
        if set(data) == {_TENSOR}:
            return tensors[data[_TENSOR]]
        return {name: from_json(item, tensors) for name, item in data.items()}
    return data
