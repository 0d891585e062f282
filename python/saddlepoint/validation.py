"""Checks of hyperparameters and dtypes shared by every layer, optimizer, schedule and command."""

from __future__ import annotations

import math

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype, which must be float32 or float64."""
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def positive_int(name: str, value) -> int:
    """Checks that ``value`` is an integer in [1, 2**63) and returns it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value < 2**63:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_float(name: str, value) -> float:
    """``value`` as a finite float > 0, or a ValueError naming it."""
    number = finite_float(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def finite_float(name: str, value) -> float:
    """``value`` as a finite float, or a ValueError naming it (an int beyond float range too)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number
