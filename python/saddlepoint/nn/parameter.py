"""`Parameter`: a trainable array and its gradient."""

from __future__ import annotations

import numpy as np

from ..validation import float_dtype


class Parameter:
    """A trainable array and the gradient accumulated for it (same shape and dtype).

    ``zero_grad()`` only marks the gradient as zero; the zeros are written when ``grad`` is
    next read, unless a layer overwrites the whole gradient first (:class:`Dense` does), which
    saves a pass over every parameter per training step.

    Parameters
    ----------
    data : array_like
        Initial value, float32 or float64; copied into a C-contiguous array.
    """

    __slots__ = ("data", "_grad", "_grad_is_zero")

    def __init__(self, data):
        data = np.array(data, copy=True, order="C")
        float_dtype(data.dtype)
        self.data: np.ndarray = data
        self._grad = np.zeros_like(data)
        self._grad_is_zero = False

    @property
    def grad(self) -> np.ndarray:
        """The gradient (a NumPy array of ``data``'s shape), accumulated by ``backward``."""
        if self._grad_is_zero:
            self._grad.fill(0)
            self._grad_is_zero = False
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        value = np.asarray(value)
        if value.shape != self.data.shape or value.dtype != self.data.dtype:
            raise ValueError(f"grad must have shape {self.data.shape} and dtype {self.data.dtype}, "
                             f"got {value.shape} and {value.dtype}")
        self._grad = np.ascontiguousarray(value)
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

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"
