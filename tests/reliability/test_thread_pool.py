"""The thread pool: absurd thread counts are refused, and changing the count leaves no threads
behind (before, every count ever used kept its pool: 821 OS threads after cycling 1..40)."""

import os
import re
import threading
import time

import numpy as np
import pytest

import saddlepoint as sp
from saddlepoint import _core


@pytest.fixture
def restore_threads():
    before = sp.get_num_threads()
    yield
    sp.set_num_threads(before)


def _relu(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    _core.activation_forward("relu", x, out)
    return out


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _os_threads_after_settling(at_most: int, seconds: float = 10.0) -> int:
    """The process's OS thread count, waiting up to `seconds` for it to fall to `at_most`: the
    threads of a dropped pool end on their own, shortly after."""
    deadline = time.monotonic() + seconds
    while _os_threads() > at_most and time.monotonic() < deadline:
        time.sleep(0.01)
    return _os_threads()


X = np.random.default_rng(0).standard_normal(1 << 18).astype(np.float32)  # takes the parallel path


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_cycling_thread_counts_leaves_no_threads_behind(restore_threads, cases):
    sp.set_num_threads(2)
    expected = _relu(X)
    before = _os_threads()
    for _ in range(2):
        for threads in range(1, 41):
            sp.set_num_threads(threads)
            assert np.array_equal(_relu(X), expected)
            cases.add()
    sp.set_num_threads(2)
    assert np.array_equal(_relu(X), expected)
    after = _os_threads_after_settling(at_most=before)
    assert after <= before, f"{before} OS threads before cycling 1..40 twice, {after} after"


def test_a_kernel_in_flight_survives_its_pool_being_replaced(restore_threads, cases):
    """A kernel running in another thread keeps its pool alive while the count changes."""
    sp.set_num_threads(2)
    expected = _relu(X)
    mismatches, errors, stop = [], [], threading.Event()

    def run_kernels():
        try:
            while not stop.is_set():
                if not np.array_equal(_relu(X), expected):
                    mismatches.append(1)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    worker = threading.Thread(target=run_kernels)
    worker.start()
    try:
        for threads in [3, 4, 1, 5, 2, 6] * 10:
            sp.set_num_threads(threads)
            cases.add()
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not worker.is_alive(), "a kernel hung while the thread count changed"
    assert not errors and not mismatches


def test_absurd_thread_counts_are_refused_quickly_and_change_nothing(restore_threads, cases):
    sp.set_num_threads(2)
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"n must be a number of threads from 1 to \d+") as refused:
        sp.set_num_threads(5000)  # took 40 s and started 5000 threads
    assert time.monotonic() - start < 1.0
    limit = int(re.search(r"from 1 to (\d+)", str(refused.value)).group(1))
    assert limit >= 64  # 4 per available core, at least 64
    for bad in [0, -1, -(2**40), limit + 1, 5000]:
        with pytest.raises(ValueError, match=rf"from 1 to {limit}.*got {bad}"):
            sp.set_num_threads(bad)
        assert sp.get_num_threads() == 2
        cases.add()
    for bad in [2.0, "4", None, [2]]:
        with pytest.raises(TypeError):
            sp.set_num_threads(bad)
        assert sp.get_num_threads() == 2
        cases.add()
    sp.set_num_threads(limit)  # the limit itself is a valid count
    assert sp.get_num_threads() == limit
    cases.add()
