"""Flatten and Unflatten: the reshapes between image batches and the rows dense layers take."""

from __future__ import annotations

import numpy as np

from ..validation import Integer, check_params, positive_int
from .module import Module
from .spec import register_layer

_DIM = Integer(-64, 63)


class _Reshape(Module):
    """A layer that only reshapes: no parameters, any dtype, a view of a contiguous input. Its
    gradients and R-derivatives are reshaped back the same way. Told that its input needs no
    gradient (see ``Sequential``), it passes None on."""

    passes_grad_input_hint = True
    _shape: tuple[int, ...] | None  # the last forward's input shape, for backward

    def __init__(self):
        self._shape = None

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        raise NotImplementedError

    def forward(self, x):
        x = np.asarray(x)
        out = self.output_shape(x.shape)
        self._shape = x.shape
        return x.reshape(out)

    def backward(self, grad_output):
        if self._shape is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        if grad_output is None:  # the layer after it computed no input gradient
            return None
        grad_output = np.asarray(grad_output)
        expected = self.output_shape(self._shape)
        if grad_output.shape != expected:
            raise ValueError(
                f"grad_output must have shape {expected} like the last output, got {grad_output.shape}"
            )
        return grad_output.reshape(self._shape)

    # --- R-operator (see Module): a reshape is linear, so R{·} is reshaped the same way ---------
    def r_forward(self, x, rx, v):
        y = self.forward(x)
        return y, None if rx is None else np.asarray(rx).reshape((len(rx),) + y.shape)

    def r_backward(self, g, rg, v, rgrads):
        grad_input = self.backward(g)
        if grad_input is None or rg is None:
            return grad_input, None
        return grad_input, np.asarray(rg).reshape((len(rg),) + grad_input.shape)


@register_layer
class Flatten(_Reshape):
    """Merges the dimensions ``start_dim`` to ``end_dim`` (inclusive; negative counts from the
    end) into one, as PyTorch's ``Flatten``: by default ``(batch, C, H, W) -> (batch, C·H·W)``.

    Examples
    --------
    >>> sp.Flatten()(np.zeros((2, 3, 4, 5), dtype=np.float32)).shape
    (2, 60)
    """

    config_fields = ("start_dim", "end_dim")
    constraints = {"start_dim": _DIM, "end_dim": _DIM}

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        settings = check_params({"start_dim": start_dim, "end_dim": end_dim}, self.constraints)
        self.start_dim, self.end_dim = settings["start_dim"], settings["end_dim"]

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        rank = len(shape)
        start = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        end = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        if not (0 <= start < rank and 0 <= end < rank) or start > end:
            raise ValueError(
                f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) does not fit an "
                f"input of shape {shape} (rank {rank}); start_dim must not come after end_dim"
            )
        return shape[:start] + (int(np.prod(shape[start : end + 1])),) + shape[end + 1 :]

    def __repr__(self) -> str:
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"


@register_layer
class Unflatten(_Reshape):
    """Splits dimension ``dim`` into ``unflattened_size``, as PyTorch's ``Unflatten``:
    ``Unflatten(1, (1, 8, 8))`` turns rows of 64 pixels ``(batch, 64)`` into images
    ``(batch, 1, 8, 8)``, so a CNN takes the same flat rows as a dense network (a table of
    pixels, the command line's ``--image-shape``).

    Examples
    --------
    >>> sp.Unflatten(1, (1, 8, 8))(np.zeros((2, 64), dtype=np.float32)).shape
    (2, 1, 8, 8)
    """

    config_fields = ("dim", "unflattened_size")

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim = _DIM.check("dim", dim)
        if isinstance(unflattened_size, (int, np.integer)) or not len(unflattened_size):
            raise ValueError(
                f"unflattened_size must be a non-empty sequence of sizes, got {unflattened_size!r}"
            )
        self.unflattened_size = tuple(positive_int("unflattened_size", n) for n in unflattened_size)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        dim = self.dim + len(shape) if self.dim < 0 else self.dim
        size = int(np.prod(self.unflattened_size))
        if not 0 <= dim < len(shape) or shape[dim] != size:
            raise ValueError(
                f"x must have {size} = {'·'.join(map(str, self.unflattened_size))} entries in "
                f"dimension {self.dim} for Unflatten({self.dim}, {self.unflattened_size}), got shape {shape}"
            )
        return shape[:dim] + self.unflattened_size + shape[dim + 1 :]

    def __repr__(self) -> str:
        return f"Unflatten({self.dim}, {self.unflattened_size})"
