"""Timing side by side: the functions take turns, so a shared machine's noise falls on all alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Repeats:
    """How much to time: ``rounds`` turns of ``block`` timed calls, each after ``warmup`` untimed
    ones and a ``pause`` of that many seconds (time for another BLAS's spinning threads to go to
    sleep where a warmup call would cost too much; see :func:`busy_wait`)."""

    rounds: int = 5
    block: int = 8
    warmup: int = 2
    pause: float = 0.0


def busy_wait(seconds: float) -> None:
    """Waits ``seconds`` on the CPU instead of sleeping. After the calling thread sleeps, Linux
    wakes saddlepoint's pool thread on the caller's vCPU and leaves it there, so the next
    20-60 ms of kernels run both halves on one core (measured on a 2-core VM: a 128x784->512
    product took 430-480 us per call after a 0.12 s sleep, 220-264 us after a 0.12 s busy
    wait). A training loop never sleeps between steps; the bench's pause should not either."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def interleaved(functions: Mapping[str, Callable[..., Any]], repeats: Repeats = Repeats()) -> dict:
    """``{name: (best, median)}`` wall seconds of each function, measured side by side.

    The functions take turns in blocks of ``block`` calls (A, B, A, B...). Whole blocks, not single
    calls, alternate because a BLAS keeps its threads spinning for a while after each call; the
    first ``warmup`` calls of each block, which would pay for the previous library's spinning
    threads, are not timed.
    """
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats.rounds):
        for name, f in functions.items():
            if repeats.pause:
                busy_wait(repeats.pause)
            for _ in range(repeats.warmup):
                f()
            for _ in range(repeats.block):
                start = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - start)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def interleaved_best(functions: Mapping[str, Callable[..., Any]], rounds=5, block=8, warmup=2) -> dict:
    """``{name: best seconds}`` (see :func:`interleaved`)."""
    result = interleaved(functions, Repeats(rounds, block, warmup))
    return {name: best for name, (best, _) in result.items()}


@dataclass
class Row:
    """One line of the table: saddlepoint's time and its competitors' (best of the repeats, with
    the medians beside them), and, where the row has one, its share of the machine's limit."""

    group: str
    name: str
    seconds: float  # saddlepoint's best
    median: float
    competitors: dict[str, float]  # best seconds by library
    competitor_medians: dict[str, float]
    limit: str | None = None  # "GEMM peak" or "memory bandwidth"
    share: float | None = None  # saddlepoint's rate as a fraction of that limit
    rate: str | None = None  # saddlepoint's rate in words ("123 GFLOP/s")
    note: str | None = None

    def ratio(self, library: str) -> float | None:
        """How many times faster saddlepoint is than ``library`` (its time over ours)."""
        theirs = self.competitors.get(library)
        return theirs / self.seconds if theirs and self.seconds > 0 else None


def row(group: str, name: str, measured: dict, ours: str = "saddlepoint", **extra) -> Row:
    """A :class:`Row` from :func:`interleaved`'s ``{name: (best, median)}``."""
    others = {k: v for k, v in measured.items() if k != ours}
    return Row(
        group,
        name,
        measured[ours][0],
        measured[ours][1],
        {k: v[0] for k, v in others.items()},
        {k: v[1] for k, v in others.items()},
        **extra,
    )


@dataclass(frozen=True)
class Sizes:
    """The problem sizes of a run: the short default, ``--full``, or the tiny ``--quick`` of the tests."""

    gemm: tuple[int, ...] = (1024,)
    memory: int = 32_000_000  # 128 MB an array: past any cache, so DRAM bandwidth (10M still partly hits L3)
    dense: tuple[tuple[int, int, int], ...] = ((128, 784, 512), (1024, 1024, 1024))
    cross_entropy: tuple[tuple[int, int], ...] = ((1024, 1000), (128, 10))
    optim: tuple[int, ...] = (100_000, 10_000_000)
    norm: tuple[tuple[int, int], ...] = ((128, 512), (1024, 512))
    samples: int = 10_000
    batch_sizes: tuple[int, ...] = (32, 128, 512)
    epochs: int = 2  # epochs timed per library; the best counts
    cnn_batch: int = 64  # the LeNet-like network's batch, in its step and its epoch
    conv: tuple[tuple[int, int, int], ...] = ((32, 64, 32),)  # 3x3 convolutions: batch, channels, size
    cnn_samples: int = 10_000  # the LeNet-like network's epoch
    scale: float = 1.0  # multiplies the number of timed calls
    # Seconds of (busy) pause before each turn: OpenBLAS's threads spin about 0.1 s after a call (its
    # THREAD_TIMEOUT), and beside spinning threads saddlepoint's pool runs its kernels serially
    # (parallel.rs), so without it the turn after NumPy's measured one thread.
    pause: float = 0.12

    def repeats(self, rounds: int, block: int, warmup: int = 1) -> Repeats:
        return Repeats(
            max(1, round(rounds * self.scale)), max(1, round(block * self.scale)), warmup, self.pause
        )


SHORT = Sizes()
FULL = Sizes(
    gemm=(1024, 2048),
    memory=100_000_000,
    # The epoch's layers at each of its batch sizes, and a large square.
    dense=tuple((b, i, o) for b in (32, 128, 512) for i, o in ((784, 512), (512, 256), (256, 10)))
    + ((1024, 1024, 1024),),
    samples=60_000,
    epochs=3,
    cnn_samples=60_000,
    scale=2.0,
)
QUICK = Sizes(
    gemm=(64,),
    memory=100_000,
    dense=((16, 32, 8),),
    cross_entropy=((16, 10),),
    optim=(1_000,),
    norm=((16, 8),),
    samples=128,
    batch_sizes=(32,),
    epochs=1,
    cnn_batch=4,
    conv=((2, 4, 6),),
    cnn_samples=32,
    scale=0.2,
    pause=0.0,
)
