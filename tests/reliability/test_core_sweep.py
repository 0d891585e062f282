"""Every function of saddlepoint._core against hostile arguments, in a child process.

The sweep itself is core_sweep.py (run as a script): a crash there (segfault, abort, a panic that
kills the interpreter) fails this test instead of killing pytest.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from saddlepoint import _core

import core_sweep

SCRIPT = os.path.join(os.path.dirname(__file__), "core_sweep.py")


def test_every_core_function_takes_hostile_arguments_without_crashing(cases):
    ran = core_sweep.run_in_child(SCRIPT, "2000")
    cases.add(ran)
    assert ran > 5000


def test_the_sweep_covers_every_core_function():
    listed = {name for name, _, _ in core_sweep.calls(np.float64, **core_sweep.SIZES)}
    assert listed == set(core_sweep.functions())
    assert "dense_forward" in core_sweep.functions() and callable(_core.dense_forward)


@pytest.mark.parametrize("crash", ["segfault", "abort"])
def test_a_crash_in_the_child_fails_the_sweep(crash):
    # The harness itself: a child that dies by a signal reports a non-zero status.
    code = {"segfault": "import ctypes; ctypes.string_at(0)", "abort": "import os; os.abort()"}[crash]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode != 0
