"""`Parameter`: a trainable array and its gradient; `pack_parameters`: a model's parameters as
views of one contiguous buffer per dtype."""

from __future__ import annotations

from typing import Iterable, NamedTuple, Optional, Sequence

import numpy as np

from ..validation import float_dtype


class Parameter:
    """A trainable array and the gradient accumulated for it (same shape and dtype).

    ``zero_grad()`` only marks the gradient as zero; the zeros are written when ``grad`` is
    next read, unless a layer overwrites the whole gradient first (:class:`Dense` does), which
    saves a pass over every parameter per training step.

    Inside a model, ``data`` and the gradient are views of the model's flat buffers (see
    :func:`pack_parameters`): write into them (``p.data[...] = x``, ``p.grad = g``) to keep
    them there; binding ``p.data`` to a new array takes the parameter out of its buffer, which
    is still correct, only slower.

    Parameters
    ----------
    data : array_like
        Initial value, float32 or float64; copied into a C-contiguous array.

    Examples
    --------
    >>> p = sp.Parameter([1.0, 2.0])
    >>> p
    Parameter(shape=(2,), dtype=float64)
    >>> p.grad
    array([0., 0.])
    """

    __slots__ = ("data", "_grad", "_grad_is_zero", "_flat")

    def __init__(self, data):
        data = np.array(data, copy=True, order="C")
        float_dtype(data.dtype)
        self.data: np.ndarray = data
        self._grad = np.zeros_like(data)
        self._grad_is_zero = False
        # (FlatBuffer, index) while data and grad are that buffer's views; see pack_parameters.
        self._flat: Optional[tuple[FlatBuffer, int]] = None

    @property
    def grad(self) -> np.ndarray:
        """The gradient (a NumPy array of ``data``'s shape), accumulated by ``backward``."""
        if self._grad_is_zero:
            self._grad.fill(0)
            self._grad_is_zero = False
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        """Copies ``value`` into the gradient array (which stays a view of the flat buffer)."""
        value = np.asarray(value)
        if value.shape != self.data.shape or value.dtype != self.data.dtype:
            raise ValueError(
                f"grad must have shape {self.data.shape} and dtype {self.data.dtype}, "
                f"got {value.shape} and {value.dtype}"
            )
        if self._grad.shape != self.data.shape or self._grad.dtype != self.data.dtype:
            self._grad = np.empty_like(self.data)  # replaced behind the API's back: start anew
        np.copyto(self._grad, value)
        self._grad_is_zero = False

    def grad_for_update(self) -> tuple[np.ndarray, bool]:
        """``(buffer, accumulate)`` for a layer about to write the gradient: ``accumulate`` is
        False right after ``zero_grad()``, and then the layer must overwrite all of ``buffer``."""
        accumulate = not self._grad_is_zero
        self._grad_is_zero = False
        return self._grad, accumulate

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def zero_grad(self) -> None:
        self._grad_is_zero = True

    def to(self, dtype) -> "Parameter":
        """Converts ``data`` to ``dtype`` (new arrays, out of any flat buffer: the container
        packs again); the gradient becomes zeros. Returns the parameter."""
        self.data = self.data.astype(float_dtype(dtype))
        self._grad, self._grad_is_zero, self._flat = np.zeros_like(self.data), False, None
        return self

    def __getstate__(self):
        # The flat buffer is not saved: data and grad travel as plain arrays, and the container
        # that owned the buffer packs them again when it is restored (Module.__setstate__).
        return None, {"data": self.data, "_grad": self._grad, "_grad_is_zero": self._grad_is_zero}

    def __setstate__(self, state) -> None:
        _, slots = state
        self.data, self._grad, self._grad_is_zero = slots["data"], slots["_grad"], slots["_grad_is_zero"]
        self._flat = None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class FlatBuffer:
    """The values and gradients of parameters of one dtype, each a 1-D array in which every
    parameter's ``data`` and gradient are views, in order and without gaps.

    Built by :func:`pack_parameters`; read with :func:`flat_span`. A parameter whose arrays were
    rebound since (``p.data = other``) is no longer part of it, and spans over it are refused.
    """

    __slots__ = ("data", "grad", "params", "_views")

    def __init__(self, params: Sequence[Parameter]):
        total = sum(p.data.size for p in params)
        dtype = params[0].data.dtype
        self.data = np.empty(total, dtype)
        self.grad = np.empty(total, dtype)
        self.params = tuple(params)
        views, start = [], 0
        for index, p in enumerate(params):
            stop = start + p.data.size
            data = self.data[start:stop].reshape(p.data.shape)
            grad = self.grad[start:stop].reshape(p.data.shape)
            np.copyto(data, p.data)
            if p._grad.shape == data.shape:
                np.copyto(grad, p._grad, casting="same_kind")
            else:  # a gradient replaced behind the API's back: its zeros are what it means
                grad.fill(0)
            p.data, p._grad, p._flat = data, grad, (self, index)
            views.append((data, grad, start, stop))
            start = stop
        self._views = tuple(views)

    def __repr__(self) -> str:
        return f"FlatBuffer({len(self.params)} parameters, {self.data.size} {self.data.dtype} values)"


class Span(NamedTuple):
    """Parameters that are adjacent views, in order, of one :class:`FlatBuffer`: their values
    and gradients are ``buffer.data[start:stop]`` and ``buffer.grad[start:stop]``."""

    buffer: FlatBuffer
    start: int
    stop: int

    @property
    def data(self) -> np.ndarray:
        return self.buffer.data[self.start : self.stop]

    @property
    def grad(self) -> np.ndarray:
        """The gradients' span, as is: read each parameter's ``grad`` first to write the zeros
        that ``zero_grad`` left pending."""
        return self.buffer.grad[self.start : self.stop]


def weight_and_bias_grads(
    weight: Parameter, bias: Parameter | None
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """``(grad_weight, grad_bias, accumulate)`` for a layer whose backward kernel writes both
    gradients with one ``accumulate`` flag: when one was zeroed and the other not, the zeroed
    one is filled with zeros and both accumulate."""
    grad_weight, accumulate = weight.grad_for_update()
    if bias is None:
        return grad_weight, None, accumulate
    grad_bias, accumulate_bias = bias.grad_for_update()
    if accumulate_bias != accumulate:
        (grad_bias if accumulate else grad_weight).fill(0)
        accumulate = True
    return grad_weight, grad_bias, accumulate


def pack_parameters(parameters: Iterable[Parameter]) -> list[FlatBuffer]:
    """Packs ``parameters`` into one :class:`FlatBuffer` per dtype (in order of first
    appearance; a parameter listed twice is packed once) and makes each parameter's ``data``
    and gradient views of it, keeping their values and any pending ``zero_grad``.

    Packing is an optimization: everything works on unpacked parameters too. Packed, a model's
    parameter vector is one array (:func:`saddlepoint.diagnose.parameters_to_vector` returns a
    view) and an optimizer steps a group of adjacent parameters in one call. Packing again (a
    container inside another, ``Module.to``) moves the parameters to the new buffer; the old
    one is dropped.
    """
    by_dtype: dict[np.dtype, list[Parameter]] = {}
    seen = set()
    for i, p in enumerate(parameters):
        if not isinstance(p, Parameter):
            raise TypeError(f"parameters[{i}] must be a saddlepoint Parameter, got {type(p).__name__}")
        if id(p) not in seen:
            seen.add(id(p))
            by_dtype.setdefault(p.data.dtype, []).append(p)
    return [FlatBuffer(params) for params in by_dtype.values()]


def flat_span(parameters: Sequence[Parameter]) -> Optional[Span]:
    """The :class:`Span` of ``parameters`` when they are, in this order, adjacent views of one
    flat buffer (and still bound to it); None otherwise, or for an empty list."""
    if not parameters:
        return None
    flat = getattr(parameters[0], "_flat", None)
    if flat is None:
        return None
    buffer, index = flat
    stop = index + len(parameters)
    views = buffer._views[index:stop]
    if len(views) != len(parameters):
        return None
    for p, owned, (data, grad, _, _) in zip(parameters, buffer.params[index:stop], views):
        if p is not owned or p.data is not data or p._grad is not grad:
            return None
    return Span(buffer, views[0][2], views[-1][3])
