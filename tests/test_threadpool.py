"""saddlepoint's thread pool under threadpoolctl, the environment's thread count, and joblib's
process workers (issue 16)."""

import os
import subprocess
import sys

import pytest
from joblib import Parallel, delayed, parallel_config
from threadpoolctl import threadpool_info, threadpool_limits

import saddlepoint
from saddlepoint._threadpool import threads_from_environment


@pytest.fixture
def two_threads():
    before = saddlepoint.get_num_threads()
    saddlepoint.set_num_threads(2)
    yield
    saddlepoint.set_num_threads(before)


def _saddlepoint_pools():
    return [info for info in threadpool_info() if info["user_api"] == "saddlepoint"]


def test_threadpool_info_lists_the_extension_module(two_threads):
    (pool,) = _saddlepoint_pools()
    assert pool["internal_api"] == "saddlepoint"
    assert pool["num_threads"] == 2
    assert pool["filepath"] == os.path.realpath(saddlepoint._core.__file__)
    assert pool["version"]


def test_threadpool_limits_caps_and_restores(two_threads):
    with threadpool_limits(1):
        assert saddlepoint.get_num_threads() == 1
        assert _saddlepoint_pools()[0]["num_threads"] == 1
    assert saddlepoint.get_num_threads() == 2
    with threadpool_limits(limits=1, user_api="saddlepoint"):
        assert saddlepoint.get_num_threads() == 1
    assert saddlepoint.get_num_threads() == 2


def test_a_limit_on_blas_alone_leaves_saddlepoint(two_threads):
    with threadpool_limits(limits=1, user_api="blas"):
        assert saddlepoint.get_num_threads() == 2


def test_a_count_out_of_range_is_refused_through_threadpoolctl(two_threads):
    with pytest.raises(ValueError, match="from 1 to .* got 100000"):
        with threadpool_limits(limits={"saddlepoint": 100000}):
            pass
    assert saddlepoint.get_num_threads() == 2


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, None),
        ({"SADDLEPOINT_NUM_THREADS": "3"}, 3),
        ({"SADDLEPOINT_NUM_THREADS": " 1 "}, 1),
        ({"OMP_NUM_THREADS": "1"}, 1),
        ({"OMP_NUM_THREADS": "3,1"}, 3),
        ({"OMP_NUM_THREADS": "1", "SADDLEPOINT_NUM_THREADS": "2"}, 2),
        ({"OMP_NUM_THREADS": "many"}, None),
        ({"OMP_NUM_THREADS": "0"}, None),
    ],
)
def test_threads_from_environment(environ, expected):
    assert threads_from_environment(environ) == expected


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "two", ""])
def test_an_invalid_environment_variable_is_refused(value):
    with pytest.raises(ValueError, match=f"SADDLEPOINT_NUM_THREADS must be .* got {value!r}"):
        threads_from_environment({"SADDLEPOINT_NUM_THREADS": value})


def _import_in_a_new_process(**environ):
    env = {k: v for k, v in os.environ.items() if k not in ("SADDLEPOINT_NUM_THREADS", "OMP_NUM_THREADS")}
    code = "import saddlepoint; print(saddlepoint.get_num_threads())"
    return subprocess.run(
        [sys.executable, "-c", code], env={**env, **environ}, capture_output=True, text=True, timeout=120
    )


def test_the_environment_variable_sets_the_count_at_import():
    assert _import_in_a_new_process(SADDLEPOINT_NUM_THREADS="3").stdout.strip() == "3"
    assert _import_in_a_new_process(OMP_NUM_THREADS="1").stdout.strip() == "1"


def test_the_import_fails_naming_an_invalid_environment_variable():
    result = _import_in_a_new_process(SADDLEPOINT_NUM_THREADS="1000000")
    assert result.returncode != 0
    assert "SADDLEPOINT_NUM_THREADS=1000000: n must be a number of threads from 1 to" in result.stderr


def _threads_in_worker():
    return os.getpid(), saddlepoint.get_num_threads()


def test_loky_workers_follow_joblibs_inner_thread_limit():
    # Workers of a machine with more cores would get cpu_count() // n_jobs: an explicit limit
    # makes the expected count the same everywhere.
    with parallel_config(backend="loky", inner_max_num_threads=1):
        results = Parallel(n_jobs=2)(delayed(_threads_in_worker)() for _ in range(4))
    assert all(pid != os.getpid() for pid, _ in results)
    assert [threads for _, threads in results] == [1] * 4
