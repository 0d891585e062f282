"""Checks of training data, and the task a target implies."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from ..nn.module import aligned


def infer_task(y: np.ndarray) -> str:
    """``"classification"`` for integer targets with few distinct values (at most 20, and at
    most half the samples), else ``"regression"``.

    Examples
    --------
    >>> sp.data.infer_task(np.array([0, 1, 1, 0, 1, 0])), sp.data.infer_task(np.array([0.5, 1.2]))
    ('classification', 'regression')
    """
    y = np.asarray(y)
    distinct = np.unique(y)
    integral = y.dtype.kind in "iub" or np.all(distinct == np.round(distinct))
    if integral and len(distinct) <= min(20, max(2, len(y) // 2)):
        return "classification"
    return "regression"


def check_data(X, y, classification: bool | None = None, name: str = "X"):
    """``X`` and ``y`` as arrays, with a clear ValueError for what training cannot use."""
    X, y = aligned(np.asarray(X)), aligned(np.asarray(y))  # the kernels below refuse misaligned data
    if X.ndim < 2:
        raise ValueError(f"{name} must be at least 2-D (samples, features), got shape {X.shape}")
    if len(X) == 0:
        raise ValueError(f"{name} is empty: the data set must have at least one sample")
    if len(X) != len(y):
        raise ValueError(f"{name} and y must have the same number of samples, got {len(X)} and {len(y)}")
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    if X.dtype in (np.float32, np.float64) and X.flags.c_contiguous and _core.all_finite(X):
        bad = None  # the common case, checked in one pass without a temporary
    else:
        bad = ~np.isfinite(X.reshape(len(X), -1)).all(axis=1)
    if bad is not None and bad.any():
        raise ValueError(
            f"{name} has NaN or infinite values in rows {np.flatnonzero(bad)[:10].tolist()}"
            f"{' ...' if bad.sum() > 10 else ''}"
        )
    if y.dtype.kind == "f":
        bad_y = ~np.isfinite(y.reshape(len(y), -1)).all(axis=1)
        if bad_y.any():
            raise ValueError(f"y has NaN or infinite values in rows {np.flatnonzero(bad_y)[:10].tolist()}")
        if classification and not np.all(y == np.round(y)):
            rows = np.flatnonzero(y.reshape(len(y), -1)[:, 0] != np.round(y.reshape(len(y), -1)[:, 0]))
            raise ValueError(
                f"classification labels must be integers, got non-integer values in rows {rows[:10].tolist()}"
            )
    elif y.dtype.kind not in "iub":
        raise TypeError(f"y must hold numbers, got dtype {y.dtype}")
    return X, y


def split_pair(name: str, value) -> tuple[Any, Any]:
    """``value`` (``validation_data=(X, y)`` and the like) as its two items: a third item would
    otherwise be taken for another argument of :func:`check_data`."""
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a pair (X, y), got {type(value).__name__}") from None
    if len(items) != 2:
        raise TypeError(f"{name} must be a pair (X, y), got {len(items)} items")
    X, y = items
    return X, y
