"""Checks of hyperparameters and dtypes shared by every layer, optimizer, schedule and command.

Hyperparameters are validated declaratively, as scikit-learn's parameter constraints: a class
names a constraint per hyperparameter (``Real(0, 1, closed="left")``, ``Integer(1)``, ``Flag()``,
``OneOf("min", "max")``, ...), and its constructor, its ``load_state_dict`` and the command line
all call :func:`check_params` (or a constraint's ``check``) with that table, so a file or a flag
can never hold what a constructor refuses. Each check returns the value normalized (a Python
``float``, ``int``, ``bool``, tuple or list) or raises ``ValueError("<name> must be <what>, got
<value>")``.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: The largest count stored (int64, as the step counters in PyTorch's files).
MAX_COUNT = 2**63 - 1


def float_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype, which must be float32 or float64."""
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def is_integer(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_finite_number(value) -> bool:
    """A finite Python or NumPy integer or float, not a bool (an int beyond float range is not)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


class Constraint:
    """What one hyperparameter may be; ``check(name, value)`` returns it normalized."""

    description = "valid"

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def normalize(self, value):
        return value

    def check(self, name: str, value):
        if not self.accepts(value):
            raise ValueError(f"{name} must be {self.description}, got {value!r}")
        return self.normalize(value)

    def described(self, description: str) -> Constraint:
        """A copy that states its expectation in other words (``"a positive number of
        seconds"``): the same check, a message in the argument's own terms."""
        other = copy.copy(self)
        other.description = description
        return other


def _bounds_text(low, high, closed: str) -> str:
    left = "[" if closed in ("both", "left") else "("
    right = "]" if closed in ("both", "right") else ")"
    return f"in {left}{low}, {high}{right}"


def _within(value, low, high, closed: str) -> bool:
    if low is not None and not (value >= low if closed in ("both", "left") else value > low):
        return False
    return high is None or (value <= high if closed in ("both", "right") else value < high)


class Real(Constraint):
    """A number in ``[low, high]`` (``closed`` is "both", "left", "right" or "neither"; ``None``
    leaves a side open); normalized to a Python float. Finite unless ``finite=False``, which
    also takes an infinity within the bounds (a time limit of inf, a best-so-far metric that
    starts at -inf), never NaN. An int too large for a float is refused in those words."""

    def __init__(self, low=None, high=None, closed: str = "both", finite: bool = True):
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be one of ['both', 'left', 'right', 'neither'], got {closed!r}")
        self.low, self.high, self.closed, self.finite = low, high, closed, finite
        kind = "a finite number" if finite else "a number"
        if low is not None and high is not None:
            self.description = _bounds_text(low, high, closed)
        elif low is not None:
            self.description = f"{kind} {'>=' if closed in ('both', 'left') else '>'} {low}"
        elif high is not None:
            self.description = f"{kind} {'<=' if closed in ('both', 'right') else '<'} {high}"
        else:
            self.description = kind if finite else "a number (not NaN)"

    def accepts(self, value) -> bool:
        if self.finite:
            return is_finite_number(value) and _within(value, self.low, self.high, self.closed)
        if not _is_real_number(value) or _too_large_for_float(value) or math.isnan(value):
            return False
        return _within(value, self.low, self.high, self.closed)

    def check(self, name: str, value):
        if _is_real_number(value) and _too_large_for_float(value):
            raise ValueError(
                f"{name} must be {self.description} that fits a float, got an integer too large for one"
            )
        return super().check(name, value)

    def normalize(self, value) -> float:
        return float(value)


def _too_large_for_float(value) -> bool:
    try:
        float(value)
    except OverflowError:
        return True
    return False


def _is_real_number(value) -> bool:
    """A Python or NumPy integer or float, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


class Integer(Constraint):
    """An integer (not a bool) in ``[low, high]``; ``high`` defaults to the int64 limit."""

    def __init__(self, low=None, high=MAX_COUNT):
        self.low, self.high = low, high
        if low == 1 and high == MAX_COUNT:
            self.description = "a positive integer"
        elif low is not None and high == MAX_COUNT:
            self.description = f"an integer >= {low}"
        else:
            self.description = f"an integer in [{low}, {high}]"

    def accepts(self, value) -> bool:
        return is_integer(value) and _within(value, self.low, self.high, "both")

    def normalize(self, value) -> int:
        return int(value)


class Flag(Constraint):
    """True or False; with ``numeric=True`` also NumPy's bools and the integers 0 and 1, as
    PyTorch's optimizers take them."""

    def __init__(self, numeric: bool = False):
        self.numeric = numeric
        self.description = "True or False (or 0/1)" if numeric else "True or False"

    def accepts(self, value) -> bool:
        if isinstance(value, bool):
            return True
        return self.numeric and (isinstance(value, np.bool_) or (is_integer(value) and value in (0, 1)))

    def normalize(self, value) -> bool:
        return bool(value)


class OneOf(Constraint):
    """One of the given strings."""

    def __init__(self, *options: str):
        self.options = options
        self.description = f"one of {list(options)}"

    def accepts(self, value) -> bool:
        return isinstance(value, str) and value in self.options


class NoneOr(Constraint):
    """``None`` or what ``inner`` accepts."""

    def __init__(self, inner: Constraint):
        self.inner = inner
        self.description = f"{inner.description} or None"

    def accepts(self, value) -> bool:
        return value is None or self.inner.accepts(value)

    def normalize(self, value):
        return None if value is None else self.inner.normalize(value)


class SequenceOf(Constraint):
    """A list or tuple (a 1-d array too) of items that ``item`` accepts, of ``length`` items when
    given, optionally increasing (strictly, or with ``ties=True`` non-decreasing); normalized
    to a tuple (``as_list=True``: a list). ``per`` names what each item is for when there is one
    per something ("parameter group"). An item that does not fit is named by its index:
    ``ValueError("milestones[1] must be a positive integer, got 0")``."""

    def __init__(
        self,
        item: Constraint,
        length: int | None = None,
        increasing: bool = False,
        as_list: bool = False,
        ties: bool = False,
        per: str | None = None,
    ):
        self.item, self.length, self.increasing, self.as_list = item, length, increasing, as_list
        self.ties = ties
        count = f"{length} " if length is not None else ""
        order = "increasing " if increasing else ""
        ties_text = " (ties allowed)" if increasing and ties else ""
        per_text = f" (one per {per})" if per else ""
        self.description = f"a list of {count}{order}values{ties_text}{per_text}, each {item.description}"

    def _is_list(self, value) -> bool:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            return False
        return np.ndim(value) == 1 and (self.length is None or len(value) == self.length)

    def _in_order(self, items) -> bool:
        if not self.increasing:
            return True
        return all(a <= b if self.ties else a < b for a, b in zip(items, items[1:]))

    def accepts(self, value) -> bool:
        if not self._is_list(value):
            return False
        items = list(value)
        return all(self.item.accepts(v) for v in items) and self._in_order(items)

    def check(self, name: str, value):
        if not self._is_list(value):
            raise ValueError(f"{name} must be {self.description}, got {value!r}")
        items = [self.item.check(f"{name}[{i}]", v) for i, v in enumerate(value)]
        if not self._in_order(items):
            order = "increasing (ties allowed)" if self.ties else "increasing"
            raise ValueError(f"{name} must be {order}, got {items}")
        return items if self.as_list else tuple(items)

    def normalize(self, value):
        items = [self.item.normalize(v) for v in value]
        return items if self.as_list else tuple(items)


def check(name: str, value, constraint: Constraint):
    """``value`` normalized by ``constraint``, or a ValueError naming ``name``."""
    return constraint.check(name, value)


def check_params(params: Mapping, constraints: Mapping[str, Constraint]) -> dict:
    """``params`` with every key that ``constraints`` names checked and normalized (keys it does
    not name are kept as they are); the first value that does not fit raises ValueError."""
    checked = dict(params)
    for name, constraint in constraints.items():
        if name in checked:
            checked[name] = constraint.check(name, checked[name])
    return checked


def positive_int(name: str, value) -> int:
    """Checks that ``value`` is an integer in [1, 2**63) and returns it."""
    return Integer(1).check(name, value)


def positive_float(name: str, value) -> float:
    """``value`` as a finite float > 0, or a ValueError naming it."""
    return Real(0, closed="neither").check(name, value)


def finite_float(name: str, value) -> float:
    """``value`` as a finite float, or a ValueError naming it (an int beyond float range too)."""
    return Real().check(name, value)
