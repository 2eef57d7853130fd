"""Aggregating per-example metric results over a data set."""

import dataclasses
import math
import numbers
from typing import Any, Dict, Iterable, Mapping

import torch
from torch import Tensor


def _scalars(record: Any, index: int) -> Dict[str, float]:
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        items = {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}
    elif isinstance(record, Mapping):
        items = dict(record)
    else:
        raise TypeError(f"results: item {index} is a {type(record).__name__}; expected a result dataclass or a mapping")
    scalars = {}
    for name, value in items.items():
        if isinstance(value, Tensor):
            if value.dim() != 0:
                continue  # curves, matrices: not aggregated
            value = value.item()
        if isinstance(value, (bool, numbers.Real)):
            scalars[str(name)] = float(value)
    return scalars


def summarize(results: Iterable[Any]) -> Dict[str, Dict[str, float]]:
    """Mean, standard deviation and counts of every scalar field of a list of results
    (the dataclasses returned by the metrics, or mappings of numbers).

    Booleans count as 0/1, so the mean of ``hit`` is the pointing-game accuracy. NaN
    values (undefined cases, e.g. ``cross_negative`` of a one-object scene) are left out
    of ``mean`` and ``std`` and counted in ``n_nan``. Tensor fields other than 0-d ones
    (curves, matrices) are skipped.

    Args:
        results: an iterable of results.

    Returns:
        ``{field: {"mean", "std" (sample, ddof = 1; nan below 2 values), "n", "n_nan"}}``.

    Example:
        >>> from captum_bilinear.metrics import PointingGameResult
        >>> summarize([PointingGameResult(True, 0.5), PointingGameResult(False, 0.25)])["hit"]
        {'mean': 0.5, 'std': 0.7071067811865476, 'n': 2.0, 'n_nan': 0.0}
    """
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Iterable):
        raise TypeError(f"results: expected an iterable of results, got {type(results).__name__}")
    columns: Dict[str, list] = {}
    for index, record in enumerate(results):
        for name, value in _scalars(record, index).items():
            columns.setdefault(name, []).append(value)
    summary = {}
    for name, values in columns.items():
        finite = torch.tensor([v for v in values if not math.isnan(v)], dtype=torch.float64)
        n = finite.numel()
        summary[name] = {
            "mean": float(finite.mean()) if n else float("nan"),
            "std": float(finite.std(correction=1)) if n > 1 else float("nan"),
            "n": float(n),
            "n_nan": float(len(values) - n),
        }
    return summary
