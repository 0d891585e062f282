"""The matrix products' instruction set, capped by SADDLEPOINT_SIMD (read once per process, so
each case runs in a child process)."""

import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = """
import sys
import numpy as np
import saddlepoint as sp

results = []
for batch, n_in, n_out in [(300, 70, 90), (32, 784, 512), (512, 784, 512)]:
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((batch, n_in)).astype(dtype)
        grad_out = rng.standard_normal((batch, n_out)).astype(dtype)
        per_thread_count = []
        for threads in (1, 2, 3):
            sp.set_num_threads(threads)
            layer = sp.Dense(n_in, n_out, dtype=dtype, rng=0)
            out = layer.forward(x)
            grad_in = layer.backward(grad_out)
            per_thread_count.append(out.tobytes() + grad_in.tobytes() + layer.weight.grad.tobytes())
        assert all(r == per_thread_count[0] for r in per_thread_count[1:]), (batch, n_in, n_out, dtype)
        results += [out.astype(np.float64), grad_in.astype(np.float64), layer.weight.grad.astype(np.float64)]
np.savez(sys.argv[1], *results)
"""


def run_child(tmp_path, simd):
    env = dict(os.environ)
    env.pop("SADDLEPOINT_SIMD", None)
    if simd is not None:
        env["SADDLEPOINT_SIMD"] = simd
    out = tmp_path / f"{simd}.npz"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    return proc, out


def test_avx2_and_default_products_agree_and_are_bit_identical_for_1_to_3_threads(tmp_path):
    results = {}
    for simd in (None, "avx2", "avx512"):
        proc, out = run_child(tmp_path, simd)
        assert proc.returncode == 0, proc.stderr
        with np.load(out) as data:
            results[simd] = [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]
    for simd in ("avx2", "avx512"):
        for a, b in zip(results[None], results[simd], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("value", ["sse", "AVX2 "])
def test_an_unknown_simd_value_is_a_clear_error(tmp_path, value):
    proc, _ = run_child(tmp_path, value)
    assert proc.returncode != 0
    assert "SADDLEPOINT_SIMD" in proc.stderr and "avx2" in proc.stderr


def run_snippet(code, simd, *args):
    env = dict(os.environ)
    env.pop("SADDLEPOINT_SIMD", None)
    if simd is not None:
        env["SADDLEPOINT_SIMD"] = simd
    return subprocess.run(
        [sys.executable, *code, *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_matmul_simd_reports_the_instruction_set_and_its_cap():
    report = ["-c", "from saddlepoint import _core; print(_core.matmul_simd())"]
    widest = run_snippet(report, None).stdout.strip()
    assert widest in ("avx512", "avx2", "None")
    capped = run_snippet(report, "avx2").stdout.strip()
    assert capped == ("None" if widest == "None" else "avx2")
    # "avx512" is a cap, not a demand: an AVX2-only CPU keeps AVX2.
    assert run_snippet(report, "avx512").stdout.strip() == widest


def test_the_command_line_refuses_an_unknown_simd_value_before_any_work(tmp_path):
    proc = run_snippet(
        ["-m", "saddlepoint.cli", "train"],
        "sse",
        "--data",
        "iris",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("saddlepoint: error: SADDLEPOINT_SIMD") and "avx2" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()
