"""The dense (fully connected) layer."""

from __future__ import annotations

import math

import numpy as np

from .. import _core
from ..validation import float_dtype, positive_int
from .module import Module, as_layer_input
from .parameter import Parameter, weight_and_bias_grads
from .scratch import scratch, scratch_like
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
        The parameters' dtype; inputs of another float dtype are converted.
    rng : numpy.random.Generator, int or None
        Source of the initial weights. As PyTorch's default, ``weight`` and ``bias`` are drawn
        from U(-1/sqrt(in_features), 1/sqrt(in_features)) (Kaiming-uniform with a = sqrt(5)).

    Raises
    ------
    ValueError
        ``in_features`` or ``out_features`` not a positive integer; in ``forward``, an input not
        shaped ``(batch, in_features)``.
    TypeError
        A ``dtype`` other than float32 or float64.

    Notes
    -----
    Shapes: ``x`` (batch, in_features) -> (batch, out_features); ``weight`` is
    (out_features, in_features), ``bias`` (out_features,).

    Inside ``nn.scratch.reusing_buffers`` (a training step) the output and the input gradient
    are buffers the layer reuses from call to call; outside it each call returns new arrays.

    Examples
    --------
    >>> layer = sp.Dense(3, 2, rng=0)
    >>> layer.weight.data.shape, layer.weight.data.dtype
    ((2, 3), dtype('float32'))
    >>> x = np.ones((4, 3), dtype=np.float32)
    >>> y = layer(x)
    >>> y.shape
    (4, 2)
    >>> grad_x = layer.backward(np.ones_like(y))  # fills layer.weight.grad and layer.bias.grad
    >>> grad_x.shape, layer.bias.grad.tolist()
    ((4, 3), [4.0, 4.0])
    """

    bias: Parameter | None
    _x: np.ndarray | None  # input of the last forward, for backward
    _rx: np.ndarray | None  # R{x} of the last r_forward, for r_backward

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype=np.float32, rng=None):
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        dtype = float_dtype(dtype)
        rng = np.random.default_rng(rng)
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, out_features).astype(dtype)) if bias else None
        # Whether backward returns the input gradient: a container tells its first layer it
        # need not (requires_grad_input), which skips the largest product of the backward pass.
        self._grad_input = True
        self._x = None
        self._rx = None

    def forward(self, x):
        x = as_layer_input(x, self.weight.dtype)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape (batch, {self.in_features}), got {x.shape}")
        out = scratch(self, "out", (x.shape[0], self.out_features), x.dtype)
        bias = None if self.bias is None else self.bias.data
        _core.dense_forward(x, self.weight.data, bias, out)
        self._x = x
        return out

    def _last_input(self) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        return self._x

    def backward(self, grad_output):
        x = self._last_input()
        grad_output = as_layer_input(grad_output, self.weight.dtype, "grad_output")
        grad_input = scratch_like(self, "grad_input", x) if self._grad_input else None
        grad_weight, grad_bias, accumulate = weight_and_bias_grads(self.weight, self.bias)
        _core.dense_backward(
            x, self.weight.data, grad_output, grad_weight, grad_bias, grad_input, accumulate=accumulate
        )
        return grad_input

    # --- R-operator (see Module): every product is one of this layer's own kernels ----------
    def r_forward(self, x, rx, v):
        """``y`` and ``R{y} = R{x} Wᵀ + x Vᵀ + V_b``: the k terms ``x V_jᵀ + V_b,j`` are one
        forward kernel with the directions stacked as k·out_features rows of a weight, and
        ``R{x} Wᵀ`` one with the k·N rows of ``R{x}`` stacked."""
        y = self.forward(x)
        x = self._last_input()
        blocks = np.ascontiguousarray(v["weight"])
        k, (n, m) = blocks.shape[0], y.shape
        stacked_bias = None if self.bias is None else np.ascontiguousarray(v["bias"]).reshape(k * m)
        along_weights = np.empty((n, k * m), dtype=y.dtype)
        _core.dense_forward(x, blocks.reshape(k * m, self.in_features), stacked_bias, along_weights)
        ry = along_weights.reshape(n, k, m).transpose(1, 0, 2)
        if rx is not None:
            along_input = np.empty((k * n, m), dtype=y.dtype)
            rows = as_layer_input(rx, self.weight.dtype, "rx").reshape(k * n, self.in_features)
            _core.dense_forward(rows, self.weight.data, None, along_input)
            ry = along_input.reshape(k, n, m) + ry
        self._rx = rx
        return y, np.ascontiguousarray(ry)

    def r_backward(self, g, rg, v, rgrads):
        """``R{∇W} = R{g}ᵀ x + gᵀ R{x}``, ``R{∇b} = Σ R{g}``, ``R{g_in} = R{g} W + g V``: per
        direction, one backward kernel for the first terms and one for each of the others."""
        grad_input = self.backward(g)
        g = as_layer_input(g, self.weight.dtype, "g")
        rx, x, W = self._rx, self._last_input(), self.weight.data
        blocks = v["weight"]
        r_weight, r_bias = rgrads["weight"], rgrads.get("bias")
        rg_in = None if grad_input is None else np.empty((len(blocks),) + grad_input.shape, grad_input.dtype)
        along_direction = None if grad_input is None else np.empty_like(grad_input)
        for j in range(len(blocks)):
            _core.dense_backward(
                x,
                W,
                np.ascontiguousarray(rg[j]),
                r_weight[j],
                None if r_bias is None else r_bias[j],
                None if rg_in is None else rg_in[j],
                accumulate=True,
            )
            if rx is not None:
                _core.dense_backward(
                    np.ascontiguousarray(rx[j]), W, g, r_weight[j], None, None, accumulate=True
                )
            if rg_in is not None:
                _core.dense_backward(x, np.ascontiguousarray(blocks[j]), g, None, None, along_direction)
                rg_in[j] += along_direction
        return grad_input, rg_in

    def requires_grad_input(self, requires: bool = True) -> "Dense":
        """Whether ``backward`` computes and returns the gradient with respect to the input
        (by default it does; without it, it returns None). Returns the layer."""
        self._grad_input = bool(requires)
        return self

    @property
    def input_grad(self) -> bool:
        """The former name of :meth:`requires_grad_input`'s setting, kept for old code."""
        return self._grad_input

    @input_grad.setter
    def input_grad(self, value: bool) -> None:
        self.requires_grad_input(value)

    def config(self) -> dict:
        return layer_config(
            self,
            in_features=self.in_features,
            out_features=self.out_features,
            bias=self.bias is not None,
            dtype=self.weight.dtype,
        )

    def __repr__(self) -> str:
        return (
            f"Dense(in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, dtype={self.weight.dtype})"
        )


Linear = Dense
"""PyTorch's name for :class:`Dense`: the same class."""
