"""Scratch buffers: what lets a training step run without allocating in steady state.

Outside :func:`reusing_buffers` every layer and loss returns a fresh array from each call, as
NumPy does. Inside it (``training.step.train_step`` opts in), each layer writes its output and
its input gradient, and each loss its gradient, into buffers it keeps and reuses on the next
call with the same shape and dtype (a new batch shape or dtype allocates new ones). Like
PyTorch's ``out=`` tensors, such an array is the layer's: it holds the values of the last step
only, and is overwritten by the same layer's next call inside the scope. ``train_step`` returns
only the loss (a float), so none of them reaches a caller; code that keeps one (a custom loss,
a hook) must copy it. The switch is a context variable, so another thread (or an ``asyncio``
task) that runs the same layers outside the scope still gets fresh arrays.

Why not always reuse, or keep two buffers: a caller may hold any number of outputs of earlier
calls (``a = model(x1); b = model(x2)``), so only a scope where no output escapes is safe.
"""

from __future__ import annotations

from contextvars import ContextVar

import numpy as np

_REUSE: ContextVar[bool] = ContextVar("saddlepoint_reuse_buffers", default=False)
reusing = _REUSE.get
"""Whether the current call is inside :func:`reusing_buffers`."""


class reusing_buffers:
    """``with reusing_buffers(): ...``: layers and losses called inside reuse their buffers
    (see the module's docstring). Re-entrant; costs two context-variable operations."""

    __slots__ = ("_token",)

    def __enter__(self) -> "reusing_buffers":
        self._token = _REUSE.set(True)
        return self

    def __exit__(self, *exc) -> None:
        _REUSE.reset(self._token)


def scratch(owner, name: str, shape: tuple, dtype) -> np.ndarray:
    """An uninitialized array of ``shape`` and ``dtype``: a fresh one outside
    :func:`reusing_buffers`, inside it ``owner``'s buffer ``name``, made again only when the
    shape or dtype differs from the last call's."""
    if not _REUSE.get():
        return np.empty(shape, dtype)
    buffers = owner.__dict__.get("_scratch")
    if buffers is None:
        buffers = owner.__dict__["_scratch"] = {}
    array = buffers.get(name)
    if array is None or array.shape != shape or array.dtype != dtype:
        array = buffers[name] = np.empty(shape, dtype)
    return array


def scratch_like(owner, name: str, like: np.ndarray) -> np.ndarray:
    """:func:`scratch` with the shape and dtype of ``like``."""
    return scratch(owner, name, like.shape, like.dtype)
