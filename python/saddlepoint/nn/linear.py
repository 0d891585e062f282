"""The dense (fully connected) layer."""

from __future__ import annotations

import math

import numpy as np

from .. import _core
from ..validation import float_dtype, positive_int
from .module import Module, as_layer_input
from .parameter import Parameter
from .spec import layer_config, register_layer


@register_layer
class Dense(Module):
    """Fully connected layer ``y = x @ weight.T + bias`` (PyTorch's ``Linear``).

    Parameters
    ----------
    in_features, out_features : int
        Sizes of each input row and each output row.
    bias : bool
        Whether to add a learnable bias.
    dtype : float32 or float64
    rng : numpy.random.Generator, int or None
        Source of the initial weights. As PyTorch's default, ``weight`` and ``bias`` are drawn
        from U(-1/sqrt(in_features), 1/sqrt(in_features)) (Kaiming-uniform with a = sqrt(5)).

    Shapes: ``x`` (batch, in_features) -> (batch, out_features); ``weight`` is
    (out_features, in_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype=np.float32, rng=None):
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        dtype = float_dtype(dtype)
        rng = np.random.default_rng(rng)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype(dtype)) if bias else None
        # The first layer of a network needs no input gradient; a trainer may switch it off.
        self.input_grad = True
        self._x = None

    def forward(self, x):
        x = as_layer_input(x, self.weight.dtype)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"x must have shape (batch, {self.in_features}), got {x.shape}"
            )
        out = np.empty((x.shape[0], self.out_features), dtype=x.dtype)
        bias = None if self.bias is None else self.bias.data
        _core.dense_forward(x, self.weight.data, bias, out)
        self._x = x
        return out

    def backward(self, grad_output):
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        grad_output = as_layer_input(grad_output, self.weight.dtype, "grad_output")
        grad_input = np.empty_like(self._x) if self.input_grad else None
        grad_weight, accumulate = self.weight.grad_for_update()
        grad_bias = None
        if self.bias is not None:
            grad_bias, accumulate_bias = self.bias.grad_for_update()
            if accumulate_bias != accumulate:  # one was zeroed, the other not: accumulate both
                (grad_bias if accumulate else grad_weight).fill(0)
                accumulate = True
        _core.dense_backward(self._x, self.weight.data, grad_output, grad_weight, grad_bias,
                             grad_input, accumulate=accumulate)
        return grad_input

    def config(self) -> dict:
        return layer_config(self, in_features=self.in_features, out_features=self.out_features,
                            bias=self.bias is not None, dtype=self.weight.dtype)

    def __repr__(self) -> str:
        return (f"Dense(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, dtype={self.weight.dtype})")


Linear = Dense
