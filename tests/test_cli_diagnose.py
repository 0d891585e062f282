"""The ``saddlepoint diagnose`` command."""

import json
import subprocess
import sys

import numpy as np
import pytest
from test_cli import write_csv

from saddlepoint.cli import main
from saddlepoint.diagnose import VERDICTS


def rows(out: str) -> dict:
    """The name/value rows after the Markdown table."""
    lines = [line for line in out.splitlines() if line and not line.startswith("|")]
    return dict(line.split("  ", 1) for line in lines)


def test_diagnose_digits_writes_a_report_folder(capsys, tmp_path):
    out = tmp_path / "report"
    assert main(["diagnose", "--hidden", "24", "--epochs", "10", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = {k.strip(): v.strip() for k, v in rows(printed).items()}
    assert result["verdict"] in VERDICTS and "| model |" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["guidance"]["verdict"] == result["verdict"]
    assert set(report["guidance"]["models"]) == {"model", "simpler", "larger"}
    assert report["guidance"]["models"]["larger"]["n_parameters"] == 64 * 24 + 24 + 24 * 24 + 24 + 24 * 10 + 10
    point = report["critical_point"]
    assert point["kind"] in ("local minimum", "local maximum", "saddle point", "degenerate")
    assert point["method"] == "full" and point["n_parameters"] == 64 * 24 + 24 + 24 * 10 + 10
    assert len(point["eigenvalues"]) == point["n_parameters"]
    markdown = (out / "report.md").read_text()
    assert f"**Verdict: {result['verdict']}**" in markdown and "## What to do" in markdown


def test_diagnose_finds_the_mismatch_of_a_shifted_test_csv(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((800, 3))
    X_test = rng.standard_normal((200, 3)) + [0, 2.5, 0]

    def f(X):
        return np.sin(X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2]

    write_csv(tmp_path / "train.csv", X, f(X), ["a", "b", "c", "y"])
    write_csv(tmp_path / "test.csv", X_test, f(X_test), ["a", "b", "c", "y"])
    argv = ["diagnose", "--data", str(tmp_path / "train.csv"), "--target", "y", "--test",
            str(tmp_path / "test.csv"), "--hidden", "64,64", "--epochs", "40", "--quiet",
            "--hessian-samples", "200", "--out", str(tmp_path / "report")]
    assert main(argv) == 0
    result = rows(capsys.readouterr().out)
    assert result["verdict"].strip() == "mismatch", result
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["guidance"]["shift"]["shifted"] and report["critical_point"]["method"] == "lanczos"


def test_report_plots_when_matplotlib_is_installed(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    assert main(["diagnose", "--data", "iris", "--hidden", "8", "--epochs", "5", "--quiet", "--out", str(out)]) == 0
    for name in ("learning_curves.png", "hessian_spectrum.png", "landscape.png"):
        assert (out / name).stat().st_size > 1000
        assert f"]({name})" in (out / "report.md").read_text()


def test_diagnose_help_and_errors():
    result = subprocess.run([sys.executable, "-m", "saddlepoint.cli", "diagnose", "--help"],
                            capture_output=True, text=True, check=True)
    for option in ["--data", "--target", "--test", "--task", "--hidden", "--larger", "--optimizer",
                   "--lr", "--epochs", "--batch-size", "--val-fraction", "--hessian-samples", "--out"]:
        assert option in result.stdout
    result = subprocess.run([sys.executable, "-m", "saddlepoint.cli", "diagnose", "--test", "x.csv",
                             "--quiet"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--test needs --data to be a CSV file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
