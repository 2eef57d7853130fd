"""Validating and slicing the ``(side a, side b)`` arguments every method takes."""

import math
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from captum_bilinear._utils.callables import as_tuple


@dataclass
class SideBatch:
    """One side's attributed inputs, baselines and additional forward arguments."""

    inputs: Tuple[Tensor, ...]
    baselines: Tuple[Tensor, ...]
    extra: Tuple[Any, ...]

    @property
    def batch_size(self) -> int:
        return self.inputs[0].shape[0]

    def example(self, index: int) -> "SideBatch":
        """The ``index``-th example (batch size 1); non-batched extras are passed whole."""
        batch = self.batch_size

        def pick(value: Any) -> Any:
            if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == batch:
                return value[index : index + 1]
            return value

        return SideBatch(
            tuple(pick(x) for x in self.inputs),
            tuple(pick(x) for x in self.baselines),
            tuple(pick(x) for x in self.extra),
        )


def _pair(value: Any, name: str, allow_none: bool) -> Tuple[Any, Any]:
    if value is None and allow_none:
        return None, None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(
            f"{name}: expected a pair (side a, side b), e.g. (input_ids, pixel_values); got "
            f"{type(value).__name__}{'' if not isinstance(value, (tuple, list)) else f' of length {len(value)}'}"
        )
    return value[0], value[1]


def check_finite(tensor: Tensor, name: str) -> None:
    """Refuses NaN and infinite entries (they make every attribution and delta non-finite)."""
    if torch.is_floating_point(tensor) or torch.is_complex(tensor):
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            index = tuple(int(i) for i in (~finite).nonzero()[0])
            raise ValueError(
                f"{name}: contains {int((~finite).sum())} NaN or infinite value(s) (the first, {tensor[index].item()}, "
                f"at index {index}); attributions of non-finite inputs are not defined"
            )


def side_tensors(value: Any, name: str) -> Tuple[Tensor, ...]:
    """One side's attributed inputs: Tensors sharing a batch size of at least 1, finite."""
    tensors = as_tuple(value)
    if not tensors or not all(isinstance(x, Tensor) for x in tensors):
        raise TypeError(f"{name}: expected a Tensor or a tuple of Tensors, got {type(value).__name__}")
    batch = tensors[0].shape[0] if tensors[0].dim() > 0 else None
    for position, tensor in enumerate(tensors):
        label = name if len(tensors) == 1 else f"{name}, tensor {position}"
        if tensor.dim() == 0 or tensor.shape[0] != batch:
            raise ValueError(
                f"{name}: all tensors of a side must share the batch size; tensor {position} has shape "
                f"{tuple(tensor.shape)}, tensor 0 has batch {batch}"
            )
        if batch == 0:
            raise ValueError(f"{label}: a batch of 0 examples (shape {tuple(tensor.shape)}); pass at least one")
        check_finite(tensor, label)
    return tensors


def side_baselines(value: Any, inputs: Tuple[Tensor, ...], name: str) -> Tuple[Tensor, ...]:
    """Captum's baseline forms: a Tensor of the input's shape or of batch 1, or a number."""
    values = as_tuple(value)
    if len(values) != len(inputs):
        raise ValueError(f"{name}: expected {len(inputs)} baseline(s), one per input tensor, got {len(values)}")
    baselines = []
    for position, (baseline, tensor) in enumerate(zip(values, inputs)):
        label = name if len(inputs) == 1 else f"{name}, baseline {position}"
        if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
            if not math.isfinite(baseline):
                raise ValueError(f"{label}: {baseline!r} is not a finite number")
            baselines.append(torch.full_like(tensor, baseline))
            continue
        if not isinstance(baseline, Tensor):
            raise TypeError(f"{name}: baseline {position} must be a Tensor or a number, got {type(baseline).__name__}")
        if baseline.shape[1:] != tensor.shape[1:] or baseline.shape[0] not in (1, tensor.shape[0]):
            raise ValueError(
                f"{name}: baseline {position} has shape {tuple(baseline.shape)}, the input {tuple(tensor.shape)}; "
                f"baselines must have the input's shape or its shape with batch 1"
            )
        check_finite(baseline, label)
        baselines.append(baseline.to(tensor.device).expand_as(tensor))
    return tuple(baselines)


def prepare_pair(
    model: Any,
    inputs: Any,
    baselines: Any = None,
    additional_forward_args: Any = None,
    with_baselines: bool = True,
) -> Tuple[SideBatch, SideBatch]:
    """Checks the pair arguments (before any heavy work) and fills in default baselines
    (none for methods that use no references: ``with_baselines=False``).

    ``model`` is a :class:`~captum_bilinear.DualEncoder` (read through its ``check_side``
    and ``default_baselines_a`` / ``default_baselines_b``; not imported here,
    so the shared mechanics stay below the encoders)."""
    raw_a, raw_b = _pair(inputs, "inputs", allow_none=False)
    inputs_a = side_tensors(raw_a, "inputs[0]")
    inputs_b = side_tensors(raw_b, "inputs[1]")
    extra_a, extra_b = _pair(additional_forward_args, "additional_forward_args", allow_none=True)
    extra_a, extra_b = as_tuple(extra_a), as_tuple(extra_b)
    base_a, base_b = _pair(baselines, "baselines", allow_none=True)
    given_a = None if base_a is None else side_baselines(base_a, inputs_a, "baselines[0]")
    given_b = None if base_b is None else side_baselines(base_b, inputs_b, "baselines[1]")
    # The sides' own checks first: they name a malformed input (a 1-D input_ids, say)
    # better than the batch comparison would.
    model.check_side("a", inputs_a, given_a, extra_a)
    model.check_side("b", inputs_b, given_b, extra_b)
    if inputs_a[0].shape[0] != inputs_b[0].shape[0]:
        raise ValueError(
            f"inputs: the batch sizes differ between side a ({inputs_a[0].shape[0]}) and side b "
            f"({inputs_b[0].shape[0]}); pass one side b input per side a input"
        )
    if not with_baselines:
        return SideBatch(inputs_a, (), extra_a), SideBatch(inputs_b, (), extra_b)
    side_a = SideBatch(inputs_a, given_a if given_a is not None else model.default_baselines_a(inputs_a, extra_a), extra_a)
    side_b = SideBatch(inputs_b, given_b if given_b is not None else model.default_baselines_b(inputs_b, extra_b), extra_b)
    return side_a, side_b


def prepare_layers(model: nn.Module, layer: Any) -> Tuple[nn.Module, nn.Module]:
    """``(layer_a, layer_b)`` from a pair of modules (or one module for both sides of a
    Siamese encoder), each checked to belong to the model when its modules are known."""
    if isinstance(layer, nn.Module):
        layers: Sequence[Any] = (layer, layer)
    elif isinstance(layer, (tuple, list)) and len(layer) == 2:
        layers = layer
    else:
        raise TypeError(
            "layer: expected a pair of modules (layer of encoder a, layer of encoder b), e.g. "
            "(model.text_model.encoder.layers[-2], model.vision_model.encoder.layers[-2]); "
            f"got {type(layer).__name__}"
        )
    known: Optional[List[nn.Module]] = list(model.modules()) if model.knows_its_modules else None
    for index, module in enumerate(layers):
        if not isinstance(module, nn.Module):
            raise TypeError(f"layer[{index}]: expected a torch.nn.Module, got {type(module).__name__}")
        if known is not None and not any(module is candidate for candidate in known):
            raise ValueError(f"layer[{index}]: this {type(module).__name__} is not a module of the model")
    check_layers = getattr(model, "check_layers", None)  # a DualEncoder's: no layer in the other side's tower
    if callable(check_layers):
        check_layers((layers[0], layers[1]))
    return layers[0], layers[1]


def check_internal_batch_size(internal_batch_size: Any) -> None:
    if internal_batch_size is None:
        return
    if isinstance(internal_batch_size, bool) or not isinstance(internal_batch_size, int) or internal_batch_size < 1:
        raise ValueError(f"internal_batch_size: expected None or a positive int, got {internal_batch_size!r}")
