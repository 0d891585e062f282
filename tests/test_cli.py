"""The ``saddlepoint train`` command."""

import subprocess
import sys

import pytest

from saddlepoint.cli import main


def test_train_reaches_95_percent_on_digits(capsys):
    assert main(["train", "--quiet"]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy:")[1].split()[0])
    assert accuracy >= 0.95, out


def test_train_regression_on_diabetes(capsys):
    assert main(["train", "--data", "diabetes", "--quiet", "--epochs", "20", "--lr", "0.01"]) == 0
    r2 = float(capsys.readouterr().out.split("test R2:")[1].split()[0])
    assert r2 > 0.3


def test_console_script_help_lists_every_option():
    result = subprocess.run([sys.executable, "-m", "saddlepoint.cli", "train", "--help"],
                            capture_output=True, text=True, check=True)
    for option in ["--data", "--hidden", "--activation", "--lr", "--epochs", "--batch-size",
                   "--test-size", "--seed", "--threads", "--quiet"]:
        assert option in result.stdout


def test_bad_option_exits_nonzero_with_a_message():
    result = subprocess.run([sys.executable, "-m", "saddlepoint.cli", "train", "--test-size", "2"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "--test-size must be in (0, 1), got 2.0" in result.stderr


@pytest.mark.parametrize("argv", [["train", "--data", "mnist"], ["train", "--lr", "-1"]])
def test_invalid_arguments_are_rejected(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
