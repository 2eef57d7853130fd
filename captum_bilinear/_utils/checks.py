"""Argument checks shared by the metrics. Every error names the offending argument."""

import math
import numbers
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

#: A box in pixel coordinates ``(x0, y0, x1, y1)``, end exclusive.
Box = Sequence[float]
#: A token span ``(start, stop)``, stop exclusive.
Span = Tuple[int, int]


def as_tensor(value: Any, name: str, dtype: Optional[torch.dtype] = None) -> Tensor:
    """``value`` (a Tensor, numpy array, number or nested sequence of numbers) as a real
    floating tensor without NaN/inf; ``dtype`` defaults to the input's float dtype or
    float64 for non-tensor input."""
    if isinstance(value, Tensor):
        tensor = value.detach()
    elif isinstance(value, (np.ndarray, numbers.Real, list, tuple)) and not isinstance(value, bool):
        try:
            tensor = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name}: expected a tensor of real numbers, got {value!r}") from error
    else:
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if tensor.is_complex():
        raise TypeError(f"{name}: expected real values, got dtype {tensor.dtype}")
    if dtype is not None:
        tensor = tensor.to(dtype)
    elif not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return tensor


def as_bool_mask(value: Any, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of dtype bool, got {type(value).__name__}")
    if value.dtype != torch.bool:
        raise TypeError(f"{name}: expected dtype torch.bool, got {value.dtype}")
    return value


def check_int(value: Any, name: str, minimum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral,)):
        if isinstance(value, Tensor) and not value.is_floating_point() and value.dtype != torch.bool \
                and value.numel() == 1:
            value = int(value.item())
        else:
            raise TypeError(f"{name}: expected an int, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return value


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool: ``True`` / ``False`` (numpy's included); anything else, a
    truthy string such as ``"yes"`` too, is refused.

    Example:
        >>> check_flag(False, "return_convergence_delta")
        False
        >>> check_flag("yes", "return_convergence_delta")
        Traceback (most recent call last):
        ...
        TypeError: return_convergence_delta: expected True or False, got 'yes' (str)
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {value!r} ({type(value).__name__})")


def check_real(value: Any, name: str) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a single number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return value


def check_pair(value: Any, name: str) -> Tuple[int, int]:
    """A pair of positive ints, e.g. ``(height, width)``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected a pair of ints, got {value!r}")
    if len(value) != 2:
        raise ValueError(f"{name}: expected a pair of ints, got {len(value)} values")
    first, second = (check_int(v, name) for v in value)
    if first < 1 or second < 1:
        raise ValueError(f"{name}: expected positive sizes, got {(first, second)}")
    return first, second


def check_span(span: Any, length: int, name: str = "span") -> Tuple[int, int]:
    """``(start, stop)`` with ``0 <= start < stop <= length``."""
    if isinstance(span, (str, bytes)) or not isinstance(span, Sequence):
        raise TypeError(f"{name}: expected a (start, stop) pair of ints, got {span!r}")
    if len(span) != 2:
        raise ValueError(f"{name}: expected a (start, stop) pair, got {len(span)} values")
    start, stop = (check_int(v, name) for v in span)
    if start >= stop:
        raise ValueError(f"{name}: empty span ({start}, {stop}); expected start < stop")
    if start < 0 or stop > length:
        raise ValueError(f"{name}: ({start}, {stop}) lies outside the {length} positions [0, {length})")
    return start, stop


def check_box_coordinates(box: Any, name: str = "box") -> Tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` of four finite numbers, not empty (``x0 < x1``, ``y0 < y1``):
    what a box must be before any image is known."""
    if isinstance(box, (Tensor, np.ndarray)):
        box = box.tolist()
    if isinstance(box, (str, bytes)) or not isinstance(box, Sequence):
        raise TypeError(f"{name}: expected (x0, y0, x1, y1), got {box!r}")
    if len(box) != 4:
        raise ValueError(f"{name}: expected 4 coordinates (x0, y0, x1, y1), got {len(box)}")
    x0, y0, x1, y1 = (check_real(v, name) for v in box)
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"{name}: {(x0, y0, x1, y1)} is empty; expected x0 < x1 and y0 < y1")
    return x0, y0, x1, y1


def check_box(box: Any, image_size: Tuple[int, int], name: str = "box") -> Tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` inside an image of ``image_size = (height, width)`` that
    contains at least one pixel centre."""
    x0, y0, x1, y1 = check_box_coordinates(box, name)
    height, width = image_size
    overhang = max(-x0, -y0, x1 - width, y1 - height)
    if overhang >= 0.5:
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise ValueError(
                f"{name}: {(x0, y0, x1, y1)} lies outside the image of (height, width) = {(height, width)}"
            )
        raise ValueError(f"{name}: {(x0, y0, x1, y1)} reaches beyond the image of (height, width) = "
                         f"{(height, width)} by up to {overhang:g} pixels; expected x in [0, {width}], y in [0, {height}]")
    # under half a pixel beyond the image: no further pixel centre, the same box clipped
    x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    if math.ceil(x1 - 0.5) <= math.ceil(x0 - 0.5) or math.ceil(y1 - 0.5) <= math.ceil(y0 - 0.5):
        raise ValueError(f"{name}: {(x0, y0, x1, y1)} contains no pixel centre")
    return x0, y0, x1, y1


def check_probability(p: Any, name: str = "p") -> float:
    value = check_real(p, name)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}: expected a probability in the open interval (0, 1), got {value}")
    return value


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


def call_batched(fn: Callable[[Tensor], Any], masks: Tensor, batch_size: Optional[int], name: str) -> Tensor:
    """``fn`` on the rows of a bool ``masks`` tensor, ``batch_size`` rows at a time, under
    ``torch.no_grad``; the results as one float64 CPU tensor ``(rows,)``."""
    if not callable(fn):
        raise TypeError(f"{name}: expected a callable, got {type(fn).__name__}")
    size = masks.shape[0] if batch_size is None else check_int(batch_size, "batch_size", minimum=1)
    chunks = []
    for start in range(0, masks.shape[0], size):
        rows = masks[start : start + size]
        with torch.no_grad():
            out = fn(rows)
        if not isinstance(out, Tensor):
            raise TypeError(f"{name}: expected it to return a torch.Tensor, got {type(out).__name__}")
        if out.numel() != rows.shape[0] or out.dim() > 2 or (out.dim() == 2 and out.shape[1] != 1):
            raise ValueError(
                f"{name}: expected a result of shape ({rows.shape[0]},) for a mask of shape "
                f"{tuple(rows.shape)}, got {tuple(out.shape)}"
            )
        chunks.append(out.detach().reshape(-1).to(device="cpu", dtype=torch.float64))
    values = torch.cat(chunks)
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name}: returned NaN or infinite values")
    return values
