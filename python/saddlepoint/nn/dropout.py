"""Inverted dropout."""

from __future__ import annotations

import numpy as np

from .. import _core
from ..validation import Real, check_params
from .module import Module
from .scratch import scratch_like
from .spec import register_layer


@register_layer
class Dropout(Module):
    """Inverted dropout: in training each element is zeroed with probability ``p`` and the
    kept ones are scaled by ``1/(1 − p)``, so eval mode (the identity) needs no rescaling.

    The mask is drawn in Rust from a 64-bit seed; each call takes a fresh seed from ``rng``
    (a ``numpy.random.Generator`` or an int seed owned by the layer), so a seeded model
    drops the same units on every run, whatever the thread count.

    Parameters
    ----------
    p : float in [0, 1)
        The probability of zeroing each element in training.
    rng : numpy.random.Generator, int or None
        Where each call's seed comes from.

    Raises
    ------
    ValueError
        ``p`` outside [0, 1).

    Examples
    --------
    >>> drop = sp.Dropout(0.5, rng=0)
    >>> y = drop(np.ones((2, 1000), dtype=np.float32))
    >>> sorted(set(y.ravel().tolist()))  # zeroed, or scaled by 1 / (1 - p)
    [0.0, 2.0]
    >>> _ = drop.eval()
    >>> drop(np.ones((1, 3), dtype=np.float32))
    array([[1., 1., 1.]], dtype=float32)
    """

    config_fields = ("p",)
    _mask: np.ndarray | None  # the last training forward's mask (None: the identity)
    constraints = {"p": Real(0, 1, closed="left")}

    def __init__(self, p: float = 0.5, *, rng=None):
        self.p = check_params({"p": p}, self.constraints)["p"]
        self.rng = np.random.default_rng(rng)
        self._mask = None

    def forward(self, x):
        if not self.training or self.p == 0:
            self._mask = None
            return x
        return self.forward_with_seed(x, int(self.rng.integers(0, 2**63)))

    def forward_with_seed(self, x, seed: int):
        """Training-mode forward with the mask drawn from ``seed`` (reproducible)."""
        x = np.ascontiguousarray(x)
        out, mask = scratch_like(self, "out", x), scratch_like(self, "mask", x)
        _core.dropout_forward(x, self.p, seed, out, mask)
        self._mask = mask
        return out

    def backward(self, grad_output):
        if self._mask is None:
            return grad_output
        mask = self._mask
        grad_output = np.asarray(grad_output)
        if grad_output.dtype != mask.dtype or grad_output.shape != mask.shape:
            return np.multiply(grad_output, mask)
        return np.multiply(grad_output, mask, out=scratch_like(self, "grad_input", mask))

    # --- R-operator (see Module) ------------------------------------------------------------
    # Eval mode is the identity. In training, the mask forward draws is a constant of the
    # function (as in PyTorch's double backward): the products are exact for that mask, and a
    # fresh mask is drawn on each r_forward as on each forward.
    def r_forward(self, x, rx, v):
        y = self.forward(x)
        if rx is None or self._mask is None:
            return y, rx
        return y, rx * self._mask

    def r_backward(self, g, rg, v, rgrads):
        return self.backward(g), rg if self._mask is None else rg * self._mask

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
