"""The allowance of one analysis: Hessian-vector products, wall time, and a progress bar.

Every analysis of the doctor runs under a :class:`Budget`: it asks before each batch of
Hessian-vector products (or loss evaluations) whether it may go on, stops when either the count
or the time is spent, and says in its result which one stopped it. While it runs, NumPy's BLAS
is held to one thread: parts of the R-operator are NumPy, and BLAS threads that compete with
saddlepoint's spinning pool threads made a Hessian-vector product of the digits network cost
168 ms instead of 3.1 ms on a loaded two-core machine (2 BLAS threads against 1; the same with
saddlepoint on 1 or 2 threads).
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from ..validation import Integer, Real, check_params

#: Defaults of every analysis: Hessian-vector products and seconds.
MAX_HVPS = 5000
"""The default budget of every analysis in Hessian-vector products."""
TIME_LIMIT = 60.0
"""The default budget of every analysis in seconds of wall time."""


#: The constraints of every analysis's limits: Hessian-vector products and seconds (inf: none).
BUDGET_CONSTRAINTS = {
    "max_hvps": Integer(1),
    "time_limit": Real(0, closed="neither", finite=False).described("a positive number of seconds"),
}


def check_budget(max_hvps, time_limit) -> tuple[int, float]:
    """``(max_hvps, time_limit)`` as int and float, or ``ValueError`` naming the argument unless
    both limits are positive (Python or NumPy numbers, not bools; ``time_limit`` may be
    infinite, but not an int too large for a float)."""
    checked = check_params({"max_hvps": max_hvps, "time_limit": time_limit}, BUDGET_CONSTRAINTS)
    return checked["max_hvps"], checked["time_limit"]


def show_progress(progress) -> bool:
    """``progress`` None means: a bar when stderr is a terminal."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def one_blas_thread():
    """A context in which NumPy's BLAS runs on one thread (see the module's docstring)."""

    return threadpool_limits(limits=1, user_api="blas")


class Budget:
    """Counts the work of one analysis against ``max_hvps`` units and ``time_limit`` seconds.

    Use as a context manager: it limits BLAS to one thread and closes the progress bar.
    """

    def __init__(
        self,
        max_hvps: int = MAX_HVPS,
        time_limit: float = TIME_LIMIT,
        progress=None,
        description: str = "Hessian",
        unit: str = "HVP",
    ):
        self.max_hvps, self.time_limit = check_budget(max_hvps, time_limit)
        self._caps = (self.max_hvps, self.time_limit)  # lowered for a while by portion()
        self._purpose: str | None = None  # what the lowered caps are for
        self._refusal: str | None = None  # the limit that last refused work
        self._first = False  # the next batch runs whatever the clock says (see first_batch)
        self.description, self.unit = description, unit
        self.show = show_progress(progress)
        self.used = 0
        self.begin = time.perf_counter()
        self._bar = None
        self._blas = None

    def __enter__(self):
        self._blas = one_blas_thread()
        if self.show:
            self._bar = tqdm(
                total=self.max_hvps, desc=self.description, unit=self.unit, file=sys.stderr, leave=False
            )
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.close()
        if self._blas is not None:
            self._blas.restore_original_limits()
        return False

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.begin

    def time_left(self) -> float:
        return self._caps[1] - self.seconds

    def left(self) -> int:
        """Units still allowed (0 once the time is up)."""
        return 0 if self.time_left() <= 0 else max(0, self._caps[0] - self.used)

    @contextmanager
    def portion(self, fraction: float, purpose: str):
        """Within the block, at most ``fraction`` of the units and time left may be spent, on
        ``purpose`` (named when that share runs out)."""
        saved = self._caps, self._purpose
        self._caps = (self.used + int(fraction * self.left()), self.seconds + fraction * self.time_left())
        self._purpose = purpose
        try:
            yield self
        finally:
            self._caps, self._purpose = saved

    def affordable(self, wanted: int) -> int:
        """How many of ``wanted`` units may run now. The first batch always runs (within
        ``max_hvps``): an analysis stopped by the clock still returns its first estimate."""
        if self.used == 0 or self._first:
            granted = min(wanted, self.max_hvps - self.used)
            self._first = False
        else:
            granted = min(wanted, self.left())
        if granted < wanted:
            self._refusal = self._limit_reached(wanted)
        return granted

    def first_batch(self) -> None:
        """Lets the next batch run whatever the clock says, as the very first one does: for a
        method that takes over from one abandoned for time."""
        self._first = True

    def allows(self, units: int) -> bool:
        return self.affordable(units) == units

    def plan(self, units: int) -> None:
        """Sets the progress bar's end to ``units`` more than used (within the budget)."""
        if self._bar is not None:
            self._bar.total = min(self.max_hvps, self.used + int(units))
            self._bar.refresh()

    def spend(self, units: int) -> None:
        self.used += units
        if self._bar is not None:
            self._bar.update(units)

    def products(self, objective, V):
        """``H V`` (rows), counted."""
        result = objective.hessian_vector_products(V)
        self.spend(len(V))
        return result

    def _limit_reached(self, wanted: int = 0) -> str:
        """The limit that refuses ``wanted`` more units: the whole one, or a portion's share."""
        time_up = self.time_left() <= 0
        limit = (
            f"time limit of {self.time_limit:g} s" if time_up else f"budget of {self.max_hvps} {self.unit}s"
        )
        whole = self.seconds >= self.time_limit if time_up else self.used + wanted > self.max_hvps
        return limit if self._purpose is None or whole else f"share of the {limit} given to {self._purpose}"

    def stop_reason(self) -> str:
        """The limit that stopped the work short."""
        return self._refusal or self._limit_reached()
