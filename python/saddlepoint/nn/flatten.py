"""Flatten: the bridge from convolutional feature maps to dense layers."""

from __future__ import annotations

import numpy as np

from ..validation import Integer, check_params
from .module import Module
from .spec import register_layer


@register_layer
class Flatten(Module):
    """Merges the dimensions ``start_dim`` to ``end_dim`` (inclusive; negative counts from the
    end) into one, as PyTorch's ``Flatten``: by default ``(batch, C, H, W) -> (batch, C·H·W)``.
    A C-contiguous input is flattened as a view, without copying. No parameters; any dtype.
    """

    config_fields = ("start_dim", "end_dim")
    constraints = {"start_dim": Integer(-64, 63), "end_dim": Integer(-64, 63)}
    _shape: tuple[int, ...] | None  # the last forward's input shape, for backward

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        settings = check_params({"start_dim": start_dim, "end_dim": end_dim}, self.constraints)
        self.start_dim, self.end_dim = settings["start_dim"], settings["end_dim"]
        self._shape = None

    def _flat_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        rank = len(shape)
        start = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        end = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        if not (0 <= start < rank and 0 <= end < rank) or start > end:
            raise ValueError(
                f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) does not fit an "
                f"input of shape {shape} (rank {rank}); start_dim must not come after end_dim"
            )
        return shape[:start] + (int(np.prod(shape[start : end + 1])),) + shape[end + 1 :]

    def forward(self, x):
        x = np.asarray(x)
        flat = self._flat_shape(x.shape)
        self._shape = x.shape
        return x.reshape(flat)

    def _last_shape(self) -> tuple[int, ...]:
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        return self._shape

    def backward(self, grad_output):
        shape = self._last_shape()
        grad_output = np.asarray(grad_output)
        if grad_output.shape != self._flat_shape(shape):
            raise ValueError(
                f"grad_output must have shape {self._flat_shape(shape)} like the last output, "
                f"got {grad_output.shape}"
            )
        return grad_output.reshape(shape)

    # --- R-operator (see Module): a reshape is linear, so R{·} is reshaped the same way ---------
    def r_forward(self, x, rx, v):
        y = self.forward(x)
        return y, None if rx is None else np.asarray(rx).reshape((len(rx),) + y.shape)

    def r_backward(self, g, rg, v, rgrads):
        grad_input = self.backward(g)
        return grad_input, None if rg is None else np.asarray(rg).reshape((len(rg),) + grad_input.shape)

    def __repr__(self) -> str:
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"
