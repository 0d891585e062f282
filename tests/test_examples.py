"""The examples in examples/: each runs in its quick mode, prints its findings, and its findings
say what the example claims (parsed from the output, not just present); each saves its figures
when matplotlib is installed.

To add an example, append an ``Example`` to ``EXAMPLES``: the script's file name, one regex per
FINDING line it must print (named groups capture numbers), and a claim over those numbers.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import pytest

import saddlepoint

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"


def number(name: str) -> str:
    """A regex group named ``name`` that captures one printed number."""
    return rf"(?P<{name}>{NUMBER})"


class Example(NamedTuple):
    script: str
    findings: list  # regexes; each must match (re.search) one FINDING line
    claim: Callable[[dict], bool] | None = None  # over the named groups, as floats
    claim_text: str = ""


EXAMPLES = [
    Example(
        "01_functions_with_unknown_parameters.py",
        [
            rf"8 hard sigmoid units: best MSE {number('hard')}, median MSE {NUMBER}",
            rf"8 sigmoid units: best MSE {number('sigmoid')}, median MSE {NUMBER}",
            rf"8 ReLU units: best MSE {number('relu')}, median MSE {NUMBER}",
            rf"wide 1-32-1 ReLU \(97 parameters\) on the sawtooth: median MSE {number('wide')}",
            rf"deep 1-8-8-1 ReLU \(97 parameters\) on the sawtooth: median MSE {number('deep')}",
        ],
        lambda v: v["sigmoid"] > max(v["hard"], v["relu"]) and v["deep"] < v["wide"],
        "smooth sigmoids fit the kinks worse than hard sigmoids and ReLUs; deep beats wide at 97 parameters",
    ),
    Example(
        "02_classification_loss.py",
        [
            rf"cross-entropy: gradient norm {number('ce_grad')} at the start; .* accuracy {number('ce_acc')} after",
            rf"MSE on softmax: gradient norm {number('mse_grad')} at the start; .* accuracy {number('mse_acc')} after",
            r"cross-entropy escapes the plateau",
        ],
        lambda v: v["ce_acc"] >= 0.9 and v["mse_acc"] <= 0.5 and v["mse_grad"] < 0.1 * v["ce_grad"],
        "cross-entropy escapes the poor start, MSE on softmax stalls on a plateau with a tiny gradient",
    ),
    Example(
        "03_adaptive_learning_rates.py",
        [
            rf"gradient descent: {number('gd')} steps to settle",
            rf"momentum 0\.9: {NUMBER} steps to settle",
            rf"Adagrad: {NUMBER} steps to settle",
            rf"RMSProp: {NUMBER} steps to settle",
            rf"Adam: {number('adam')} steps to settle",
            rf"RMSProp lr 1 with constant: farthest from the minimum {number('const_far')} .* "
            rf"after 300 steps {number('const_end')}",
            rf"RMSProp lr 1 with warmup: farthest from the minimum {number('warm_far')} \(start {number('start')}\)",
            rf"RMSProp lr 1 with decay: .* after 300 steps {number('decay_end')}",
        ],
        lambda v: (
            v["adam"] < v["gd"]
            and v["warm_far"] <= v["start"] < v["const_far"]
            and v["decay_end"] < 1e-6 < v["const_end"]
        ),
        "Adam settles in fewer steps than gradient descent; warmup stops the overshoot, decay the hovering",
    ),
    Example(
        "04_normalization.py",
        [
            rf"raw features .*: Hessian condition number {number('raw_cond')}; .* in {number('raw_steps')} step",
            rf"normalized features: Hessian condition number {number('norm_cond')}; .* in {number('norm_steps')} step",
            rf"ReLU: epochs to a training loss below 0\.1: median {number('plain')} ",
            rf"ReLU \+ BatchNorm1d: epochs to a training loss below 0\.1: median {number('bn')} ",
        ],
        lambda v: (
            v["norm_cond"] < 2 < 50 < v["raw_cond"]
            and v["norm_steps"] < 10 < v["raw_steps"]
            and v["bn"] < v["plain"]
        ),
        "normalized features make the surface round and descent fast; BatchNorm1d reaches the target sooner",
    ),
]


def _run(script: str, out: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SADDLEPOINT_EXAMPLES_QUICK="1", SADDLEPOINT_EXAMPLES_OUT=str(out))
    # The examples import the same saddlepoint as the tests.
    package_root = str(Path(saddlepoint.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / script)], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.script for e in EXAMPLES])
def test_example_runs_quick_and_prints_its_finding(example, tmp_path):
    result = _run(example.script, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    findings = [line for line in result.stdout.splitlines() if line.startswith("FINDING: ")]
    values: dict[str, float] = {}
    for pattern in example.findings:
        matches = [m for m in map(re.compile(pattern).search, findings) if m]
        assert matches, f"no FINDING line matches {pattern!r}:\n" + "\n".join(findings)
        values.update({k: float(v) for k, v in matches[0].groupdict().items()})
    if example.claim is not None:
        assert example.claim(values), f"claim fails: {example.claim_text}; values {values}\n" + "\n".join(
            findings
        )
    stem = Path(example.script).stem
    figures = sorted(tmp_path.glob(f"{stem}*.png"))
    if importlib.util.find_spec("matplotlib") is None:
        assert not figures and "matplotlib is not installed" in result.stdout
    else:
        assert figures, f"{example.script} saved no {stem}*.png in {tmp_path}"
        assert all(f.stat().st_size > 5000 for f in figures), [(f.name, f.stat().st_size) for f in figures]


def _common_module():
    spec = importlib.util.spec_from_file_location("examples_common", EXAMPLES_DIR / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_common_quick_mode_figure_folder_and_findings(monkeypatch, tmp_path, capsys):
    common = _common_module()
    monkeypatch.setattr(sys, "argv", ["example.py"])
    monkeypatch.delenv("SADDLEPOINT_EXAMPLES_QUICK", raising=False)
    assert not common.quick()
    monkeypatch.setattr(sys, "argv", ["example.py", "--quick"])
    assert common.quick()
    monkeypatch.setattr(sys, "argv", ["example.py"])
    monkeypatch.setenv("SADDLEPOINT_EXAMPLES_QUICK", "1")
    assert common.quick()
    monkeypatch.setenv("SADDLEPOINT_EXAMPLES_OUT", str(tmp_path / "figures"))
    assert common.figure_dir() == tmp_path / "figures" and (tmp_path / "figures").is_dir()
    common.finding("x is 1.5")
    assert capsys.readouterr().out == "FINDING: x is 1.5\n"


def test_common_skips_figures_without_matplotlib(monkeypatch, tmp_path, capsys, without_matplotlib):
    common = _common_module()
    monkeypatch.setenv("SADDLEPOINT_EXAMPLES_OUT", str(tmp_path))
    assert common.save_figure("nothing", lambda ax: None) is None
    assert not list(tmp_path.iterdir())
    assert "not saved: plots skipped: matplotlib is not installed" in capsys.readouterr().out
