"""Flatten and Unflatten: the reshapes between image batches and the rows dense layers take."""

from __future__ import annotations

import numpy as np

from ..validation import Integer, check_params, positive_int
from .module import Module
from .spec import register_layer


@register_layer
class Flatten(Module):
    """Merges the dimensions ``start_dim`` to ``end_dim`` (inclusive; negative counts from the
    end) into one, as PyTorch's ``Flatten``: by default ``(batch, C, H, W) -> (batch, C·H·W)``.
    A C-contiguous input is flattened as a view, without copying. No parameters; any dtype.
    """

    config_fields = ("start_dim", "end_dim")
    passes_grad_input_hint = True
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
        if grad_output is None:  # the layer after it computed no input gradient (see Sequential)
            return None
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
        if grad_input is None or rg is None:
            return grad_input, None
        return grad_input, np.asarray(rg).reshape((len(rg),) + grad_input.shape)

    def __repr__(self) -> str:
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"


@register_layer
class Unflatten(Module):
    """Splits dimension ``dim`` into ``unflattened_size``, as PyTorch's ``Unflatten``:
    ``Unflatten(1, (1, 8, 8))`` turns rows of 64 pixels ``(batch, 64)`` into images
    ``(batch, 1, 8, 8)``, so a CNN takes the same flat rows as a dense network (a table of
    pixels, the command line's ``--image-shape``). A contiguous input is reshaped as a view.
    """

    config_fields = ("dim", "unflattened_size")
    passes_grad_input_hint = True
    _shape: tuple[int, ...] | None  # the last forward's input shape, for backward

    def __init__(self, dim: int, unflattened_size):
        self.dim = Integer(-64, 63).check("dim", dim)
        if isinstance(unflattened_size, (int, np.integer)) or not len(unflattened_size):
            raise ValueError(
                f"unflattened_size must be a non-empty sequence of sizes, got {unflattened_size!r}"
            )
        self.unflattened_size = tuple(positive_int("unflattened_size", n) for n in unflattened_size)
        self._shape = None

    def _unflat_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        dim = self.dim + len(shape) if self.dim < 0 else self.dim
        if not 0 <= dim < len(shape) or shape[dim] != int(np.prod(self.unflattened_size)):
            raise ValueError(
                f"x must have {int(np.prod(self.unflattened_size))} = "
                f"{'·'.join(map(str, self.unflattened_size))} entries in dimension {self.dim} for "
                f"Unflatten({self.dim}, {self.unflattened_size}), got shape {shape}"
            )
        return shape[:dim] + self.unflattened_size + shape[dim + 1 :]

    def forward(self, x):
        x = np.asarray(x)
        shape = self._unflat_shape(x.shape)
        self._shape = x.shape
        return x.reshape(shape)

    def backward(self, grad_output):
        if self._shape is None:
            raise RuntimeError("Unflatten.backward called before forward")
        if grad_output is None:  # the layer after it computed no input gradient (see Sequential)
            return None
        grad_output = np.asarray(grad_output)
        if grad_output.shape != self._unflat_shape(self._shape):
            raise ValueError(
                f"grad_output must have shape {self._unflat_shape(self._shape)} like the last output, "
                f"got {grad_output.shape}"
            )
        return grad_output.reshape(self._shape)

    # --- R-operator (see Module): a reshape is linear --------------------------------------------
    def r_forward(self, x, rx, v):
        y = self.forward(x)
        return y, None if rx is None else np.asarray(rx).reshape((len(rx),) + y.shape)

    def r_backward(self, g, rg, v, rgrads):
        grad_input = self.backward(g)
        if grad_input is None or rg is None:
            return grad_input, None
        return grad_input, np.asarray(rg).reshape((len(rg),) + grad_input.shape)

    def __repr__(self) -> str:
        return f"Unflatten({self.dim}, {self.unflattened_size})"
