"""The ``saddlepoint train`` command."""

import json
import subprocess
import sys

import numpy as np
import pytest

from saddlepoint.cli import main


def table(out: str) -> dict:
    rows = [line.split(None, 1) if "  " not in line else line.split("  ", 1) for line in out.splitlines()]
    return {name.strip(): value.strip() for name, value in rows}


def test_train_reaches_95_percent_on_digits_and_writes_a_run_folder(capsys, tmp_path):
    assert main(["train", "--quiet", "--out", str(tmp_path / "run")]) == 0
    result = table(capsys.readouterr().out)
    assert float(result["test accuracy"]) >= 0.95, result
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.json", "history.csv", "history.json", "weights.safetensors"}
    config = json.loads((run / "config.json").read_text())
    assert config["layers"] == [64, 128, 10] and config["task"] == "classification"
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 30 and "val_accuracy" in history


def write_csv(path, X, y, names):
    lines = [",".join(names)] + [",".join(f"{v:.6f}" for v in (*row, t)) for row, t in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")


def test_train_on_a_regression_csv_reaches_r2_above_0_9(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (1500, 3))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 - X[:, 2]
    write_csv(tmp_path / "smooth.csv", X, y, ["a", "b", "c", "y"])
    argv = ["train", "--data", str(tmp_path / "smooth.csv"), "--target", "y", "--hidden", "64,64",
            "--epochs", "60", "--quiet", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    result = table(capsys.readouterr().out)
    assert float(result["test R2"]) >= 0.9, result


def test_options_build_what_they_say(capsys, tmp_path):
    argv = ["train", "--data", "wine", "--hidden", "32,32", "--activation", "tanh", "--batchnorm",
            "--dropout", "0.1", "--optimizer", "momentum", "--lr", "0.01", "--schedule", "cosine",
            "--warmup", "3", "--weight-decay", "1e-4", "--early-stopping", "5", "--epochs", "40",
            "--batch-size", "16", "--threads", "1", "--quiet", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    result = table(capsys.readouterr().out)
    assert float(result["test accuracy"]) > 0.9


def test_console_script_help_lists_every_option():
    result = subprocess.run([sys.executable, "-m", "saddlepoint.cli", "train", "--help"],
                            capture_output=True, text=True, check=True)
    for option in ["--data", "--target", "--task", "--hidden", "--activation", "--batchnorm", "--dropout",
                   "--optimizer", "--lr", "--weight-decay", "--schedule", "--warmup", "--batch-size",
                   "--epochs", "--val-fraction", "--early-stopping", "--test-size", "--seed",
                   "--threads", "--out", "--quiet"]:
        assert option in result.stdout


@pytest.mark.parametrize("csv,argv_extra,message", [
    ("a,b\n1,2\n3,4\n", ["--target", "y"], "has no column 'y'; its columns are ['a', 'b']"),
    ("a,y\n1,2\nx,4\n", ["--target", "y"], "line 3, column 'a': 'x' is not a number"),
    ("a,y\n", ["--target", "y"], "has a header but no data rows"),
    ("a,y\n1,2\n", [], "--target COLUMN is required with a CSV file"),
])
def test_bad_csv_exits_nonzero_with_a_one_line_message(tmp_path, csv, argv_extra, message):
    path = tmp_path / "data.csv"
    path.write_text(csv)
    result = subprocess.run([sys.executable, "-m", "saddlepoint.cli", "train", "--data", str(path), *argv_extra,
                             "--quiet", "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["train", "--data", "mnist"], ["train", "--lr", "-1"],
                                  ["train", "--batch-size", "0"], ["train", "--dropout", "1.5"]])
def test_invalid_arguments_are_rejected(argv, capsys):
    code = None
    try:
        code = main(argv + ["--quiet"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2


def test_run_folder_gets_a_loss_plot_when_matplotlib_is_installed(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["train", "--data", "iris", "--epochs", "5", "--quiet", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
