"""The 2-D convolution layer."""

from __future__ import annotations

import math

import numpy as np

from .. import _core
from ..validation import Integer, SequenceOf, float_dtype, is_integer, positive_int
from .module import Module, as_layer_input
from .parameter import Parameter, weight_and_bias_grads
from .scratch import reusing, scratch, scratch_like
from .spec import layer_config, register_layer


def _pair(name: str, value, low: int) -> tuple[int, int]:
    """``value`` (an int, or a pair of ints) as ``(h, w)``, each at least ``low``."""
    if is_integer(value):
        value = (value, value)
    h, w = SequenceOf(Integer(low), length=2).check(name, value)
    return int(h), int(w)


@register_layer
class Conv2d(Module):
    """2-D convolution over NCHW arrays (PyTorch's ``Conv2d``, a cross-correlation).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output; both divisible by ``groups``.
    kernel_size, stride, padding, dilation : int or (int, int)
        The kernel's height and width, the step between output pixels, the zeros added on each
        side of the input, and the spacing between kernel taps; an int is used for both axes.
    groups : int
        Input and output channels are split into this many groups, each convolved separately
        (``groups == in_channels``: a depthwise convolution).
    bias : bool
        Whether to add a learnable bias per output channel.
    dtype : float32 or float64
        The parameters' dtype.
    rng : numpy.random.Generator, int or None
        Source of the initial weights. As PyTorch's default, ``weight`` and ``bias`` are drawn from
        U(-1/sqrt(fan_in), 1/sqrt(fan_in)), ``fan_in = in_channels / groups · kh · kw``.

    Raises
    ------
    ValueError
        A size that is not a positive integer (or pair), channels not divisible by ``groups``;
        in ``forward``, an input that is not ``(batch, in_channels, H, W)`` or is smaller than
        the dilated kernel.

    Notes
    -----
    Shapes: ``x`` (batch, in_channels, H, W) -> (batch, out_channels, OH, OW) with
    ``OH = (H + 2·padding_h - dilation_h·(kh - 1) - 1) // stride_h + 1`` (and OW alike);
    ``weight`` is (out_channels, in_channels / groups, kh, kw), ``bias`` (out_channels,).

    Inside ``nn.scratch.reusing_buffers`` (a training step) the output and the input gradient
    are buffers the layer reuses from call to call; outside it each call returns new arrays.
    There the forward pass also keeps the input's column matrices (im2col), up to
    ``max_kept_columns`` elements, and the backward pass multiplies them again instead of
    building them a second time.

    Examples
    --------
    >>> conv = sp.Conv2d(1, 4, kernel_size=3, padding=1, rng=0)
    >>> conv.weight.data.shape
    (4, 1, 3, 3)
    >>> x = np.zeros((2, 1, 8, 8), dtype=np.float32)
    >>> y = conv(x)
    >>> y.shape
    (2, 4, 8, 8)
    >>> conv.backward(np.ones_like(y)).shape
    (2, 1, 8, 8)
    """

    max_kept_columns = 1 << 19
    """The most elements of column matrices a forward pass keeps for the backward pass (2 MB in
    float32). A larger batch builds them again in the backward pass, a few samples at a time:
    measured in a whole LeNet training step (2 cores), kept columns saved 5-8% at batch 16
    (2 MB of columns) and cost up to 5% at batch 64 (9 MB), which no longer stay in the caches
    between the two passes while the rest of the network runs."""

    bias: Parameter | None
    _x: np.ndarray | None  # input of the last forward, for backward
    _columns: np.ndarray | None  # its column matrices, when the forward kept them
    _rx: np.ndarray | None  # R{x} of the last r_forward, for r_backward

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        *,
        dtype=np.float32,
        rng=None,
    ):
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.dilation = _pair("dilation", dilation, 1)
        self.groups = positive_int("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups must divide in_channels ({in_channels}) and out_channels ({out_channels}), "
                f"got {groups}"
            )
        dtype = float_dtype(dtype)
        rng = np.random.default_rng(rng)
        kh, kw = self.kernel_size
        bound = 1.0 / math.sqrt(in_channels // groups * kh * kw)
        shape = (out_channels, in_channels // groups, kh, kw)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, out_channels).astype(dtype)) if bias else None
        self._grad_input = True  # see requires_grad_input
        self._x = None
        self._columns = None
        self._rx = None

    def _geometry(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], int]:
        return self.stride, self.padding, self.dilation, self.groups

    def output_shape(self, input_shape) -> tuple[int, int, int, int]:
        """The output's shape for an input of ``input_shape`` (batch, in_channels, H, W)."""
        n, _, h, w = input_shape
        sizes = []
        for size, k, s, p, d in zip((h, w), self.kernel_size, self.stride, self.padding, self.dilation):
            sizes.append(max(size + 2 * p - d * (k - 1) - 1, -1) // s + 1)
        return (n, self.out_channels, sizes[0], sizes[1])

    def _check_input(self, x, name: str = "x") -> np.ndarray:
        x = as_layer_input(x, self.weight.dtype, name)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{name} must have shape (batch, {self.in_channels}, height, width), got {x.shape}"
            )
        return x

    def _conv(self, x, weight, bias) -> np.ndarray:
        """``conv2d(x, weight) + bias`` into a new array (for the R-operator's extra products)."""
        n, _, oh, ow = self.output_shape(x.shape)
        out = np.empty((n, weight.shape[0], oh, ow), x.dtype)
        _core.conv2d_forward(x, weight, bias, out, *self._geometry())
        return out

    def forward(self, x):
        x = self._check_input(x)
        out_shape = self.output_shape(x.shape)
        # A kernel larger than the padded input: the kernel's error, which names x.
        out = scratch(self, "out", tuple(max(s, 0) for s in out_shape), x.dtype)
        bias = None if self.bias is None else self.bias.data
        columns = self._columns_buffer(x, out_shape)
        self._columns = None  # the buffer may be the last forward's: valid once written again
        _core.conv2d_forward(x, self.weight.data, bias, out, *self._geometry(), columns=columns)
        self._x, self._columns = x, columns
        return out

    def _columns_buffer(self, x: np.ndarray, out_shape) -> np.ndarray | None:
        """This layer's buffer for the column matrices of ``x`` inside ``reusing_buffers``, or
        None: outside it (an array per call would cost more than building the columns again),
        for a pointwise convolution (its columns are the input) or above ``max_kept_columns``."""
        kh, kw = self.kernel_size
        pointwise = (kh, kw) == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)
        n, _, oh, ow = out_shape
        length = n * self.in_channels * kh * kw * oh * ow
        if not reusing() or pointwise or not 0 < length <= self.max_kept_columns:
            return None
        return scratch(self, "columns", (length,), x.dtype)

    def _last_input(self) -> np.ndarray:
        if self._x is None:
            raise RuntimeError("Conv2d.backward called before forward")
        return self._x

    def backward(self, grad_output):
        x = self._last_input()
        grad_output = as_layer_input(grad_output, self.weight.dtype, "grad_output")
        grad_input = scratch_like(self, "grad_input", x) if self._grad_input else None
        grad_weight, grad_bias, accumulate = weight_and_bias_grads(self.weight, self.bias)
        _core.conv2d_backward(
            x,
            self.weight.data,
            grad_output,
            grad_weight,
            grad_bias,
            grad_input,
            *self._geometry(),
            accumulate=accumulate,
            columns=self._columns,
        )
        return grad_input

    # --- R-operator (see Module): conv is bilinear in its input and its weight ----------------
    def r_forward(self, x, rx, v):
        """``y`` and ``R{y} = conv(R{x}, W) + conv(x, V) + V_b``. Without groups the k terms
        ``conv(x, V_j) + V_b,j`` are one convolution with the directions stacked as k·out_channels
        output channels, and ``conv(R{x}, W)`` one with the k·N samples of ``R{x}`` stacked."""
        y = self.forward(x)
        x = self._last_input()
        blocks = np.ascontiguousarray(v["weight"])
        k, (n, m) = blocks.shape[0], y.shape[:2]
        biases = None if self.bias is None else np.ascontiguousarray(v["bias"])
        if self.groups == 1:
            stacked_bias = None if biases is None else biases.reshape(k * m)
            along_weights = self._conv(x, blocks.reshape((k * m,) + blocks.shape[2:]), stacked_bias)
            ry = np.ascontiguousarray(along_weights.reshape((n, k, m) + y.shape[2:]).transpose(1, 0, 2, 3, 4))
        else:
            ry = np.stack([self._conv(x, blocks[j], None if biases is None else biases[j]) for j in range(k)])
        if rx is not None:
            rx = self._check_input(np.asarray(rx).reshape((k * n,) + x.shape[1:]), "rx")
            ry += self._conv(rx, self.weight.data, None).reshape(ry.shape)
            rx = rx.reshape((k,) + x.shape)
        self._rx = rx
        return y, ry

    def r_backward(self, g, rg, v, rgrads):
        """``R{∇W} = wgrad(x, R{g}) + wgrad(R{x}, g)``, ``R{∇b} = Σ R{g}``,
        ``R{g_in} = dgrad(R{g}, W) + dgrad(g, V)``: per direction, one backward kernel for the
        first terms and one for each of the others."""
        grad_input = self.backward(g)
        g = as_layer_input(g, self.weight.dtype, "g")
        rx, x, W = self._rx, self._last_input(), self.weight.data
        blocks = v["weight"]
        r_weight, r_bias = rgrads["weight"], rgrads.get("bias")
        rg_in = None if grad_input is None else np.empty((len(blocks),) + grad_input.shape, grad_input.dtype)
        along_direction = None if grad_input is None else np.empty_like(grad_input)
        geometry = self._geometry()
        for j in range(len(blocks)):
            _core.conv2d_backward(
                x,
                W,
                np.ascontiguousarray(rg[j]),
                r_weight[j],
                None if r_bias is None else r_bias[j],
                None if rg_in is None else rg_in[j],
                *geometry,
                accumulate=True,
            )
            if rx is not None:
                _core.conv2d_backward(
                    np.ascontiguousarray(rx[j]), W, g, r_weight[j], None, None, *geometry, accumulate=True
                )
            if rg_in is not None:
                block = np.ascontiguousarray(blocks[j])
                _core.conv2d_backward(x, block, g, None, None, along_direction, *geometry)
                rg_in[j] += along_direction
        return grad_input, rg_in

    def requires_grad_input(self, requires: bool = True) -> "Conv2d":
        """Whether ``backward`` computes and returns the gradient with respect to the input
        (by default it does; without it, it returns None). Returns the layer."""
        self._grad_input = bool(requires)
        return self

    def config(self) -> dict:
        return layer_config(
            self,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=self.bias is not None,
            dtype=self.weight.dtype,
        )

    def __repr__(self) -> str:
        return (
            f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, bias={self.bias is not None}, dtype={self.weight.dtype})"
        )
