"""2-D pooling on NCHW arrays: max pooling, average pooling and adaptive average pooling, each one
Rust kernel forward and one backward, with PyTorch's semantics."""

from __future__ import annotations

import math

import numpy as np

from .. import _core
from ..validation import Integer, SequenceOf
from .module import Module, as_layer_input
from .scratch import scratch
from .spec import register_layer

Size2 = tuple[int, int]


def _size2(name: str, value, low: int) -> int | Size2:
    """``value`` as PyTorch takes a 2-D size: one integer >= ``low`` for both dimensions, or a
    (height, width) pair of them (a list is kept as a tuple)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return SequenceOf(Integer(low), length=2).check(name, value)
    return Integer(low).check(name, value)


def _pair(value: int | Size2) -> Size2:
    return (value, value) if isinstance(value, int) else value


class _Pool2d(Module):
    """What the pooling layers share: the last input's shape and dtype, for backward, and the
    R-operator's bookkeeping. Inside ``nn.scratch.reusing_buffers`` the output and the input
    gradient are buffers the layer reuses from call to call."""

    config_fields: tuple[str, ...] = ()
    _x_shape: tuple[int, ...] | None  # shape and dtype of the last forward's input
    _dtype: np.dtype | None
    _out_shape: tuple[int, ...]

    def __init__(self):
        self._x_shape = None
        self._dtype = None
        self._out_shape = ()

    def _pooled_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError

    def _start(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``x`` as a C-contiguous array and a buffer for its output. The kernels check the
        input (rank, sizes against the kernel) and name it; an input they refuse gets an
        output buffer of any shape (their check of ``x`` comes first)."""
        x = np.ascontiguousarray(x)
        shape = self._pooled_shape(x.shape)
        return x, scratch(self, "out", shape, x.dtype if x.dtype.kind == "f" else np.float64)

    def _saved(self) -> tuple[tuple[int, ...], np.dtype]:
        if self._x_shape is None or self._dtype is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._x_shape, self._dtype

    def _grad_output(self, grad_output, name: str = "grad_output") -> np.ndarray:
        """``grad_output`` checked against the last forward's output (shape and dtype)."""
        _, dtype = self._saved()
        grad_output = as_layer_input(grad_output, dtype, name)
        if grad_output.shape != self._out_shape:
            raise ValueError(
                f"{name} must have the shape of the last forward's output {self._out_shape}, "
                f"got {grad_output.shape}"
            )
        return grad_output

    def _stacked(self, arrays, shape: tuple[int, ...], name: str) -> tuple[np.ndarray, int]:
        """The ``(k, N, ...)`` directions ``arrays`` as one batch of ``k·N`` rows, and ``k``."""
        _, dtype = self._saved()
        arrays = as_layer_input(arrays, dtype, name)
        if arrays.ndim != len(shape) + 1 or arrays.shape[1:] != shape:
            raise ValueError(f"{name} must have shape (k, *{shape}), got {arrays.shape}")
        k = arrays.shape[0]
        return arrays.reshape((k * shape[0],) + shape[1:]), k

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)}" for name in self.config_fields)
        return f"{type(self).__name__}({fields})"


class _WindowPool2d(_Pool2d):
    """A pooling over windows of ``kernel_size`` moved by ``stride`` over the input padded by
    ``padding`` on each side (``ceil_mode=False``, as PyTorch's default)."""

    config_fields = ("kernel_size", "stride", "padding")

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _size2("kernel_size", kernel_size, 1)
        self.stride = self.kernel_size if stride is None else _size2("stride", stride, 1)
        self.padding = _size2("padding", padding, 0)
        kernel, padding = _pair(self.kernel_size), _pair(self.padding)
        if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
            raise ValueError(
                f"padding must be at most half of kernel_size {self.kernel_size}, got {self.padding}"
            )
        self._settings = (kernel, _pair(self.stride), padding)

    def _pooled_shape(self, shape):
        if len(shape) != 4:
            return (0, 0, 1, 1)
        (kh, kw), (sh, sw), (ph, pw) = self._settings
        n, c, h, w = shape
        return (n, c, max((h + 2 * ph - kh) // sh + 1, 1), max((w + 2 * pw - kw) // sw + 1, 1))


@register_layer
class MaxPool2d(_WindowPool2d):
    """2-D max pooling (PyTorch's ``MaxPool2d`` with ``dilation=1``, ``ceil_mode=False``).

    Parameters
    ----------
    kernel_size : int or (int, int)
        The window's height and width.
    stride : int or (int, int), optional
        The step between windows; by default ``kernel_size``.
    padding : int or (int, int)
        Implicit -inf added on each side, at most half the kernel size (PyTorch's rule).

    Notes
    -----
    Shapes: ``x`` (N, C, H, W) -> (N, C, OH, OW) with ``OH = (H + 2·padding - kernel_size) //
    stride + 1`` (alike OW). Any float dtype of the input (float32, float64).

    The forward pass records where each maximum came from (the first in row-major order on
    ties; a NaN is a window's maximum, as in PyTorch); the backward pass sends each output's
    gradient there, and the R-operator differentiates through those positions.

    Examples
    --------
    >>> pool = sp.MaxPool2d(2)
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> pool(x)[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    >>> pool.backward(np.ones((1, 1, 2, 2), dtype=np.float32))[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]], dtype=float32)
    """

    _indices: np.ndarray | None  # where each maximum of the last forward came from

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)
        self._indices = None

    def forward(self, x):
        x, out = self._start(x)
        indices = scratch(self, "indices", out.shape, np.int64)
        _core.max_pool2d_forward(x, *self._settings, out, indices)
        self._x_shape, self._dtype, self._out_shape, self._indices = x.shape, x.dtype, out.shape, indices
        return out

    def _last_indices(self) -> np.ndarray:
        self._saved()
        assert self._indices is not None  # set by every forward, as the shape _saved checks
        return self._indices

    def backward(self, grad_output):
        x_shape, dtype = self._saved()
        grad_output = self._grad_output(grad_output)
        grad_input = scratch(self, "grad_input", x_shape, dtype)
        _core.max_pool2d_backward(grad_output, self._last_indices(), grad_input)
        return grad_input

    # --- R-operator (see Module): the derivative through the recorded maxima ---------------
    def r_forward(self, x, rx, v):
        """``y`` and ``R{y}``: each direction of ``R{x}`` read at the positions of the maxima."""
        y = self.forward(x)
        if rx is None:
            return y, None
        (n, c, h, w), _ = self._saved()
        rows, k = self._stacked(rx, (n, c, h, w), "rx")
        positions = self._last_indices().reshape(1, n * c, math.prod(y.shape[2:]))
        ry = np.take_along_axis(rows.reshape(k, n * c, h * w), positions, axis=2)
        return y, ry.reshape((k,) + y.shape)

    def r_backward(self, g, rg, v, rgrads):
        """``g_in`` and ``R{g_in}``: the backward kernel applied to every direction of ``R{g}``
        at once, with the recorded positions repeated for each."""
        grad_input = self.backward(g)
        x_shape, dtype = self._saved()
        rows, k = self._stacked(rg, self._out_shape, "rg")
        indices = np.broadcast_to(self._last_indices(), (k,) + self._out_shape).reshape(rows.shape)
        rg_in = np.empty((rows.shape[0],) + x_shape[1:], dtype)
        _core.max_pool2d_backward(rows, np.ascontiguousarray(indices), rg_in)
        return grad_input, rg_in.reshape((k,) + x_shape)


class _LinearPool2d(_Pool2d):
    """Forward, backward and R-operator of a linear pooling (average and adaptive average), given
    its two kernels: ``_pool(x, out)`` and ``_unpool(grad_output, grad_input)``. Being linear,
    its R-operator is its own forward and backward applied to the k directions stacked as k·N
    samples."""

    def _pool(self, x, out) -> None:
        raise NotImplementedError

    def _unpool(self, grad_output, grad_input) -> None:
        raise NotImplementedError

    def forward(self, x):
        x, out = self._start(x)
        self._pool(x, out)
        self._x_shape, self._dtype, self._out_shape = x.shape, x.dtype, out.shape
        return out

    def backward(self, grad_output):
        x_shape, dtype = self._saved()
        grad_output = self._grad_output(grad_output)
        grad_input = scratch(self, "grad_input", x_shape, dtype)
        self._unpool(grad_output, grad_input)
        return grad_input

    def r_forward(self, x, rx, v):
        y = self.forward(x)
        if rx is None:
            return y, None
        rows, k = self._stacked(rx, self._saved()[0], "rx")
        ry = np.empty((rows.shape[0],) + y.shape[1:], y.dtype)
        self._pool(rows, ry)
        return y, ry.reshape((k,) + y.shape)

    def r_backward(self, g, rg, v, rgrads):
        grad_input = self.backward(g)
        x_shape, dtype = self._saved()
        rows, k = self._stacked(rg, self._out_shape, "rg")
        rg_in = np.empty((rows.shape[0],) + x_shape[1:], dtype)
        self._unpool(rows, rg_in)
        return grad_input, rg_in.reshape((k,) + x_shape)


@register_layer
class AvgPool2d(_LinearPool2d, _WindowPool2d):
    """2-D average pooling (PyTorch's ``AvgPool2d`` with ``ceil_mode=False`` and
    ``count_include_pad=True``: the padding counts as zeros in each window's mean, whose
    divisor is always ``kernel_size[0]·kernel_size[1]``).

    Parameters and shapes as :class:`MaxPool2d` (the padding holds zeros). The layer is linear:
    its R-operator is its own forward and backward applied to the directions.

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    >>> sp.AvgPool2d(2)(x)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    def _pool(self, x, out) -> None:
        _core.avg_pool2d_forward(x, *self._settings, out)

    def _unpool(self, grad_output, grad_input) -> None:
        _core.avg_pool2d_backward(grad_output, *self._settings, grad_input)


@register_layer
class AdaptiveAvgPool2d(_LinearPool2d):
    """2-D adaptive average pooling to a fixed output size (PyTorch's ``AdaptiveAvgPool2d``):
    output row ``i`` averages the input rows ``floor(i·H/OH)`` to ``ceil((i+1)·H/OH)`` (alike
    columns), whatever the input's size. ``output_size=1`` is global average pooling.

    Parameters
    ----------
    output_size : int or (int, int)
        ``(OH, OW)``, each at least 1; one integer for both.

    Notes
    -----
    Shapes: ``x`` (N, C, H, W) -> (N, C, OH, OW). Any float dtype of the input. The layer is
    linear: its R-operator is its own forward and backward applied to the directions.

    Examples
    --------
    >>> x = np.ones((2, 3, 5, 7), dtype=np.float32)
    >>> sp.AdaptiveAvgPool2d(1)(x).shape
    (2, 3, 1, 1)
    """

    config_fields = ("output_size",)

    def __init__(self, output_size):
        super().__init__()
        self.output_size = _size2("output_size", output_size, 1)

    def _pooled_shape(self, shape):
        if len(shape) != 4:
            return (0, 0, 1, 1)
        return tuple(shape[:2]) + _pair(self.output_size)

    def _pool(self, x, out) -> None:
        _core.adaptive_avg_pool2d_forward(x, out)

    def _unpool(self, grad_output, grad_input) -> None:
        _core.adaptive_avg_pool2d_backward(grad_output, grad_input)
