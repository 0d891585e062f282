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
    # Example 5's measured times are matched, never compared: a loaded machine may turn them.
    Example(
        "05_batch_size.py",
        [
            rf"large batch has (?:less|more) time per epoch: {NUMBER} ms .* against {NUMBER} ms",
            rf"and (?:more|less) time per update: {NUMBER} ms against {NUMBER} ms",
            rf"small batch is better on validation: accuracy {number('small_acc')} .* against "
            rf"{number('large_acc')} ",
            rf"small batch reached a flatter minimum: top Hessian eigenvalue {number('small_top')} against "
            rf"{number('large_top')}, loss increase under 5% perturbations {number('small_rise')} against "
            rf"{number('large_rise')} ",
        ],
        lambda v: (
            v["small_acc"] > v["large_acc"]
            and v["small_top"] < v["large_top"]
            and v["small_rise"] < v["large_rise"]
        ),
        "batches of 8 end better on validation and in a flatter minimum than the whole training set",
    ),
    Example(
        "06_saddle_point.py",
        [
            r"the worked example at \(0, 0\) is a saddle point: Hessian eigenvalues -2 and 2$",
            rf"u = \({number('u1')}, {number('u2')}\); escape lowers the loss from {number('before')} to "
            rf"{number('after')}$",
            r"the all-zero tanh network is a saddle point",
            rf"gradient descent alone stays at the saddle: loss {number('stuck_start')} -> "
            rf"{number('stuck_end')} in",
            rf"SaddleEscape escaped at epoch {NUMBER} \(λ = {number('escape_eigenvalue')}\): loss "
            rf"{number('escape_before')} -> {number('escape_after')}, and {number('escape_end')} after",
        ],
        lambda v: (
            abs(v["u1"] - 2**-0.5) < 1e-4
            and abs(v["u2"] - 2**-0.5) < 1e-4
            and v["before"] == 1
            and v["after"] < 1e-3
            and v["stuck_start"] == v["stuck_end"]
            and v["escape_eigenvalue"] < 0
            and abs(v["escape_before"] - v["stuck_start"]) <= 1e-3 * v["stuck_start"]
            and v["escape_end"] < v["escape_after"] < v["escape_before"] / 2
        ),
        "the worked example escapes along u = (1, 1)/√2 to a loss near 0; gradient descent stays at the "
        "zero network's saddle, SaddleEscape leaves it and training goes on",
    ),
    Example(
        "07_general_guidance.py",
        [
            r"FINDING: checkerboard: model bias \(",
            r"FINDING: deep sigmoid: optimization \(",
            r"FINDING: few noisy samples: overfitting \(",
            r"FINDING: shifted test: mismatch \(",
        ],
        None,
        "each guidance data set gets the verdict it was made for",
    ),
    Example(
        "08_cnn_vs_dense.py",
        [
            rf"the CNN beats the dense network: test accuracy {number('cnn')} against {number('dense')}, "
            rf"with {number('cnn_parameters')} against {number('dense_parameters')} parameters",
            rf"shift augmentation (?:helps|does not help) the dense network: test accuracy {NUMBER} against",
            rf"shift augmentation (?:helps|does not help) the CNN: test accuracy {number('shift')} against",
            rf"flip augmentation hurts the CNN: test accuracy {number('flip')} against {number('shift_alone')} ",
        ],
        lambda v: (
            v["cnn"] > v["dense"]
            and v["cnn_parameters"] < 1.5 * v["dense_parameters"]
            and v["flip"] < v["shift_alone"] == v["shift"]
        ),
        "the CNN beats a dense network of about as many parameters; flipping digits hurts",
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
