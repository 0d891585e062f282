"""Examples 5-8 (``examples/``) run in their quick mode and print what they claim: each test runs
one script in a subprocess, parses its ``FINDING:`` lines and checks the claim against the
numbers printed with it, and checks the PNGs it saves when matplotlib is installed."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import saddlepoint

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def run_example(script: str, out: Path) -> list[str]:
    """Runs ``examples/<script>`` in quick mode with its figures in ``out``; returns its findings."""
    package_root = str(Path(saddlepoint.__file__).resolve().parent.parent)
    env = dict(os.environ, SADDLEPOINT_EXAMPLES_QUICK="1", SADDLEPOINT_EXAMPLES_OUT=str(out))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    findings = [line[len("FINDING: ") :] for line in done.stdout.splitlines() if line.startswith("FINDING: ")]
    assert findings, f"{script} printed no FINDING line:\n{done.stdout}"
    return findings


def numbers(pattern: str, findings: list[str]) -> tuple[float, ...]:
    """The numbers ``pattern``'s groups (each ``{n}``, a number) capture in the one finding it
    matches."""
    regex = re.compile(pattern.replace("{n}", f"({NUMBER})"))
    matches = [m for m in map(regex.search, findings) if m]
    assert len(matches) == 1, f"expected one finding matching {pattern!r}, got {findings}"
    return tuple(float(g) for g in matches[0].groups())


def check_figures(out: Path, names: list[str]) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        return  # the examples print that they skipped their figures
    for name in names:
        png = out / name
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{name} not written"


def test_batch_size_example(tmp_path):
    findings = run_example("05_batch_size.py", tmp_path)
    # Times are measured: the test checks that the words follow the numbers, not the numbers.
    words, large, small, ratio = re.search(
        rf"large batch has (less|more) time per epoch: ({NUMBER}) ms .* against ({NUMBER}) ms .*, ratio ({NUMBER})",
        "\n".join(findings),
    ).groups()
    assert words == ("less" if float(large) < float(small) else "more") and float(ratio) > 0
    words, large, small = re.search(
        rf"and (more|less) time per update: ({NUMBER}) ms against ({NUMBER}) ms", "\n".join(findings)
    ).groups()
    assert words == ("more" if float(large) > float(small) else "less")
    small_acc, large_acc, *_ = numbers(
        r"small batch is better on validation: accuracy {n} .* against {n} .*; training loss {n} against {n}",
        findings,
    )
    assert small_acc > large_acc
    small_top, large_top, *_ = numbers(
        r"reached a flatter minimum: top Hessian eigenvalue {n} against {n}, .* {n} against {n}", findings
    )
    assert small_top < large_top
    check_figures(tmp_path, ["05_batch_size.png"])


def test_saddle_point_example(tmp_path):
    findings = run_example("06_saddle_point.py", tmp_path)
    assert "the worked example at (0, 0) is a saddle point: Hessian eigenvalues -2 and 2" in findings
    u1, u2, before, after = numbers(r"u = \({n}, {n}\); escape lowers the loss from {n} to {n}", findings)
    assert u1 == pytest.approx(2**-0.5, abs=1e-4) and u2 == pytest.approx(2**-0.5, abs=1e-4)
    assert before == 1 and after < 1e-3
    assert any(f.startswith("the all-zero tanh network is a saddle point") for f in findings)
    stuck_before, stuck_after, _ = numbers(
        r"alone stays at the saddle: loss {n} -> {n} in {n} epochs", findings
    )
    assert stuck_before == stuck_after
    _, eigenvalue, escape_before, escape_after, final = numbers(
        r"SaddleEscape escaped at epoch {n} \(λ = {n}\): loss {n} -> {n}, and {n} after", findings
    )
    assert eigenvalue < 0 and escape_before == pytest.approx(stuck_before, rel=1e-3)
    assert escape_after < escape_before / 2 and final < escape_after
    check_figures(tmp_path, ["06_saddle_point_surface.png", "06_saddle_point_training.png"])


def test_general_guidance_example(tmp_path):
    findings = run_example("07_general_guidance.py", tmp_path)
    verdicts = dict(re.match(r"(.+?): (\S+(?: bias)?) \(", f).groups() for f in findings)
    assert verdicts == {
        "checkerboard": "model bias",
        "deep sigmoid": "optimization",
        "few noisy samples": "overfitting",
        "shifted test": "mismatch",
    }
    check_figures(tmp_path, ["07_general_guidance.png"])


def test_cnn_vs_dense_example(tmp_path):
    findings = run_example("08_cnn_vs_dense.py", tmp_path)
    cnn, dense, cnn_parameters, dense_parameters = numbers(
        r"the CNN beats the dense network: test accuracy {n} against {n}, with {n} against {n} parameters",
        findings,
    )
    assert cnn > dense and cnn_parameters < 2 * dense_parameters  # about as many parameters
    for model in ("dense network", "CNN"):
        regex = rf"shift augmentation (helps|does not help) the {model}: test accuracy ({NUMBER}) against ({NUMBER})"
        match = next(m for m in map(re.compile(regex).match, findings) if m)
        helps = float(match.group(2)) > float(match.group(3))
        assert match.group(1) == ("helps" if helps else "does not help")
    flip, shift = numbers(r"flip augmentation hurts the CNN: test accuracy {n} against {n}", findings)
    assert flip < shift
    check_figures(tmp_path, ["08_cnn_vs_dense.png"])
