"""Reading and replacing one layer's activation during an encoder pass.

A :class:`LayerTap` holds no hook between passes: each :meth:`LayerTap.capture` or
:meth:`LayerTap.replace` installs its hook for the duration of one ``with`` block and
removes it on exit, errors included. This is what lets a Siamese encoder use the same
layer module for both sides: a side's hook is never present during the other side's pass.

The replacement may have a larger batch than the pass that reaches the layer: an encoder
run on one example can be fed many interpolated activations at the layer, so the layers
below run once (DESIGN.md section 2, step 4).
"""

from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Mapping, Tuple, Union

from torch import Tensor
from torch.nn import Module


def _first_tensor_of_output(output: Any) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    if isinstance(output, Mapping):
        for value in output.values():
            if isinstance(value, Tensor):
                return value
    raise TypeError(
        "layer: its output must be a Tensor, a tuple whose first element is a Tensor, "
        f"or a ModelOutput; got {type(output).__name__}"
    )


def _with_first_tensor_of_output(output: Any, activation: Tensor) -> Any:
    if isinstance(output, Tensor):
        return activation
    if isinstance(output, (tuple, list)):
        return type(output)([activation, *output[1:]])
    replaced = output.__class__(**output)
    first_key = next(k for k, v in output.items() if isinstance(v, Tensor))
    replaced[first_key] = activation
    return replaced


def _first_tensor_argument(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Union[int, str]:
    """Where the first tensor argument is: its index in ``args``, or its key in ``kwargs``."""
    for index, value in enumerate(args):
        if isinstance(value, Tensor):
            return index
    for key, value in kwargs.items():
        if isinstance(value, Tensor):
            return key
    raise TypeError("layer: attribute_to_layer_input=True but the layer received no Tensor input")


class LayerTap:
    """Captures or replaces the first tensor output (or input) of ``layer``."""

    def __init__(self, layer: Module, attribute_to_layer_input: bool = False, name: str = "layer") -> None:
        self.layer = layer
        self.attribute_to_layer_input = attribute_to_layer_input
        self.name = name

    @contextmanager
    def _hooked(self, on_activation: Any) -> Iterator[List[int]]:
        """Installs a hook calling ``on_activation(activation) -> replacement or None``;
        yields a one-element list counting the layer's calls."""
        calls = [0]

        def count_once() -> None:
            calls[0] += 1
            if calls[0] > 1:
                raise ValueError(
                    f"{self.name}: the module is called more than once in one encoder pass; "
                    "choose a layer the encoder calls exactly once"
                )

        if self.attribute_to_layer_input:

            def pre_hook(module: Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
                count_once()
                where = _first_tensor_argument(args, kwargs)
                activation = args[where] if isinstance(where, int) else kwargs[where]
                replacement = on_activation(activation)
                if replacement is None:
                    return None
                if isinstance(where, int):
                    args = (*args[:where], replacement, *args[where + 1 :])
                else:
                    kwargs = {**kwargs, where: replacement}
                return args, kwargs

            handle = self.layer.register_forward_pre_hook(pre_hook, with_kwargs=True)
        else:

            def hook(module: Module, args: Any, output: Any) -> Any:
                count_once()
                replacement = on_activation(_first_tensor_of_output(output))
                if replacement is None:
                    return None
                return _with_first_tensor_of_output(output, replacement)

            handle = self.layer.register_forward_hook(hook)
        try:
            yield calls
        finally:
            handle.remove()

    def _require_called(self, calls: List[int]) -> None:
        if calls[0] == 0:
            raise ValueError(
                f"{self.name}: the encoder of this side never calls this module; "
                "pass a layer of the encoder that computes this side's embedding"
            )

    @contextmanager
    def capture(self) -> Iterator[List[Tensor]]:
        """Yields a list that receives the (detached) activation of the pass run inside."""
        captured: List[Tensor] = []

        def keep(activation: Tensor) -> None:
            captured.append(activation.detach())
            return None

        with self._hooked(keep) as calls:
            yield captured
        self._require_called(calls)

    @contextmanager
    def replace(self, activation: Tensor) -> Iterator[None]:
        """Within the block, the layer's activation is ``activation`` (whose batch may be
        a multiple of the running batch; its other dimensions must match)."""

        def substitute(natural: Tensor) -> Tensor:
            if tuple(natural.shape[1:]) != tuple(activation.shape[1:]):
                raise ValueError(
                    f"{self.name}: the activation has shape {tuple(natural.shape)} in this pass "
                    f"but the substitute has shape {tuple(activation.shape)}; the inputs and "
                    "baselines must give activations of the same shape"
                )
            return activation

        with self._hooked(substitute) as calls:
            yield
        self._require_called(calls)
