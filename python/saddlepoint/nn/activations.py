"""Elementwise activations, each one Rust kernel forward and one backward."""

from __future__ import annotations

import numpy as np

from .. import _core
from ..validation import finite_float
from .module import Module, as_layer_input
from .scratch import scratch_like
from .spec import register_layer


class Activation(Module):
    """An elementwise activation run by one Rust kernel; subclasses name it. Inside
    ``nn.scratch.reusing_buffers`` its output and input gradient are reused buffers."""

    kind = "identity"
    config_fields: tuple[str, ...] = ()
    _x: np.ndarray | None  # input and output of the last forward, for backward
    _y: np.ndarray | None
    _r_saved: tuple[np.ndarray | None, np.ndarray, np.ndarray | None] | None  # R{x}, f'(x), f''(x)

    def __init__(self):
        self._x = None
        self._y = None
        self._r_saved = None

    def _slope(self) -> float:
        return 0.0

    def forward(self, x):
        x = np.ascontiguousarray(x)
        out = scratch_like(self, "out", x)
        _core.activation_forward(self.kind, x, out, self._slope())
        self._x, self._y = x, out
        return out

    def _last_forward(self) -> tuple[np.ndarray, np.ndarray]:
        if self._x is None or self._y is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._x, self._y

    def backward(self, grad_output):
        x, y = self._last_forward()
        grad_output = as_layer_input(grad_output, x.dtype, "grad_output")
        grad_input = scratch_like(self, "grad_input", x)
        _core.activation_backward(self.kind, x, y, grad_output, grad_input, self._slope())
        return grad_input

    # --- R-operator (see Module): R{f(x)} = f'(x) R{x}, R{g_in} = f'(x) R{g} + f''(x) R{x} g ----
    def r_forward(self, x, rx, v):
        y = self.forward(x)
        x, _ = self._last_forward()
        d1 = np.empty_like(y)  # f'(x): the backward kernel applied to ones
        _core.activation_backward(self.kind, x, y, np.ones_like(y), d1, self._slope())
        d2 = self.second_derivative(x, y, d1)
        self._r_saved = (rx, d1, d2)
        return y, None if rx is None else d1 * rx

    def r_backward(self, g, rg, v, rgrads):
        grad_input = self.backward(g)
        if self._r_saved is None:
            raise RuntimeError(f"{type(self).__name__}.r_backward called before r_forward")
        rx, d1, d2 = self._r_saved
        rg_in = d1 * rg
        if d2 is not None and rx is not None:
            rg_in += d2 * rx * g
        return grad_input, rg_in

    def second_derivative(self, x, y, d1):
        """``f''(x)`` from the input, the output and ``f'(x)``, or None where it is 0: so for the
        piecewise-linear activations away from their kinks, as in PyTorch's double backward."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@register_layer
class Identity(Activation):
    """``y = x``.

    Examples
    --------
    >>> sp.Identity()(np.array([[-1.0, 1.0]]))
    array([[-1.,  1.]])
    """

    kind = "identity"


@register_layer
class ReLU(Activation):
    """``y = max(x, 0)``; the derivative at 0 is 0, as in PyTorch.

    Examples
    --------
    >>> sp.ReLU()(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
    """

    kind = "relu"


@register_layer
class Sigmoid(Activation):
    """``y = 1 / (1 + exp(-x))``.

    Examples
    --------
    >>> sp.Sigmoid()(np.array([[0.0]]))
    array([[0.5]])
    """

    kind = "sigmoid"

    def second_derivative(self, x, y, d1):
        return d1 * (1 - 2 * y)


@register_layer
class HardSigmoid(Activation):
    """``y = relu6(x + 3) / 6``, PyTorch's ``Hardsigmoid``: the course's piecewise-linear sigmoid.

    Examples
    --------
    >>> sp.HardSigmoid()(np.array([[-4.0, 0.0, 1.5, 4.0]]))
    array([[0.  , 0.5 , 0.75, 1.  ]])
    """

    kind = "hard_sigmoid"


@register_layer
class Tanh(Activation):
    """``y = tanh(x)``.

    Examples
    --------
    >>> sp.Tanh()(np.array([[0.0]]))
    array([[0.]])
    """

    kind = "tanh"

    def second_derivative(self, x, y, d1):
        return -2 * y * d1


@register_layer
class LeakyReLU(Activation):
    """``y = x`` for ``x > 0``, ``negative_slope * x`` otherwise.

    Examples
    --------
    >>> sp.LeakyReLU(0.1)(np.array([[-1.0, 1.0]]))
    array([[-0.1,  1. ]])
    """

    kind = "leaky_relu"
    config_fields = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = finite_float("negative_slope", negative_slope)

    def _slope(self) -> float:
        return self.negative_slope

    def __repr__(self) -> str:
        return f"LeakyReLU(negative_slope={self.negative_slope})"


ACTIVATIONS = {
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "hard_sigmoid": HardSigmoid,
    "tanh": Tanh,
    "leaky_relu": LeakyReLU,
    "identity": Identity,
}
"""The activation layers by the name ``mlp``, the configs and the command line use (``"relu"``, ``"sigmoid"``, ...)."""
