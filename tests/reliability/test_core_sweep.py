"""Every function of saddlepoint._core against hostile arguments, in a child process.

The sweep itself is core_sweep.py (run as a script): a crash there (segfault, abort, a panic that
kills the interpreter) fails this test instead of killing pytest.
"""

import os
import re
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "core_sweep.py")


def run_sweep(*args):
    env = dict(os.environ, RUST_BACKTRACE="0")
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=300, env=env)


def test_every_core_function_takes_hostile_arguments_without_crashing(cases):
    result = run_sweep("2000")
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"the sweep failed (exit status {result.returncode}):\n{report[-8000:]}"
    ran = re.search(r"^cases (\d+)$", result.stdout, re.M)
    assert ran, report[-2000:]
    cases.add(int(ran.group(1)))
    assert int(ran.group(1)) > 5000


def test_the_sweep_covers_every_core_function():
    sys.path.insert(0, os.path.dirname(__file__))
    import core_sweep
    import numpy as np

    from saddlepoint import _core

    listed = {name for name, _, _ in core_sweep.calls(np.float64, **core_sweep.SIZES)}
    assert listed == set(core_sweep.functions())
    assert "dense_forward" in core_sweep.functions() and callable(_core.dense_forward)


@pytest.mark.parametrize("crash", ["segfault", "abort"])
def test_a_crash_in_the_child_fails_the_sweep(crash):
    # The harness itself: a child that dies by a signal reports a non-zero status.
    code = {"segfault": "import ctypes; ctypes.string_at(0)", "abort": "import os; os.abort()"}[crash]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode != 0
