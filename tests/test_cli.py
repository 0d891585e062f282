"""The ``saddlepoint train`` command."""

import json
import subprocess
import sys
from pathlib import Path

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
    assert {p.name for p in run.iterdir()} >= {
        "config.json",
        "history.csv",
        "history.json",
        "weights.safetensors",
    }
    config = json.loads((run / "config.json").read_text())
    # The 64 pixels go through the preprocessing of any table: constant ones are dropped and
    # those of a few intensities one-hot encoded (columns.csv says which).
    assert config["layers"][1:] == [128, 10] and config["task"] == "classification"
    assert (run / "columns.csv").exists() and (run / "preprocessing.json").exists()
    history = json.loads((run / "history.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    # The defaults: at most 200 epochs, stopped when the validation loss stops improving.
    assert len(history["loss"]) == metrics["epochs"] < 200 and "val_accuracy" in history
    assert result["epochs"].startswith(f"{metrics['epochs']} (stopped early; weights of epoch ")
    best = metrics["weights of epoch"]
    assert history["val_loss"][best - 1] == min(history["val_loss"]) and metrics["epochs"] == best + 11
    assert metrics["test accuracy"] == pytest.approx(float(result["test accuracy"]), abs=5e-5)


def write_csv(path, X, y, names):
    lines = [",".join(names)] + [",".join(f"{v:.6f}" for v in (*row, t)) for row, t in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")


def test_train_on_a_regression_csv_reaches_r2_above_0_9(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (1500, 3))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 - X[:, 2]
    write_csv(tmp_path / "smooth.csv", X, y, ["a", "b", "c", "y"])
    argv = [
        "train",
        "--data",
        str(tmp_path / "smooth.csv"),
        "--target",
        "y",
        "--hidden",
        "64,64",
        "--epochs",
        "60",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(argv) == 0
    result = table(capsys.readouterr().out)
    assert float(result["test R2"]) >= 0.9, result


def test_options_build_what_they_say(capsys, tmp_path):
    argv = [
        "train",
        "--data",
        "wine",
        "--hidden",
        "32,32",
        "--activation",
        "tanh",
        "--batchnorm",
        "--dropout",
        "0.1",
        "--optimizer",
        "momentum",
        "--lr",
        "0.01",
        "--schedule",
        "cosine",
        "--warmup",
        "3",
        "--weight-decay",
        "1e-4",
        "--early-stopping",
        "5",
        "--epochs",
        "40",
        "--batch-size",
        "16",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(argv) == 0
    result = table(capsys.readouterr().out)
    assert float(result["test accuracy"]) > 0.9


def test_console_script_help_lists_every_option():
    result = subprocess.run(
        [sys.executable, "-m", "saddlepoint.cli", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in [
        "--data",
        "--target",
        "--task",
        "--hidden",
        "--activation",
        "--batchnorm",
        "--dropout",
        "--optimizer",
        "--lr",
        "--weight-decay",
        "--schedule",
        "--warmup",
        "--batch-size",
        "--epochs",
        "--val-fraction",
        "--early-stopping",
        "--test-size",
        "--seed",
        "--threads",
        "--out",
        "--quiet",
    ]:
        assert option in result.stdout


@pytest.mark.parametrize(
    "csv,argv_extra,message",
    [
        ("a,b\n1,2\n3,4\n", ["--target", "y"], "has no column 'y'; its columns are ['a', 'b']"),
        ("a,y\n1,2\n3,4,5\n", ["--target", "y"], "line 3 has 3 cells, the header has 2"),
        ("a,y\n", ["--target", "y"], "has a header but no data rows"),
        ("a,y\n1,2\n", [], "--target COLUMN is required with a CSV file"),
    ],
)
def test_bad_csv_exits_nonzero_with_a_one_line_message(tmp_path, csv, argv_extra, message):
    path = tmp_path / "data.csv"
    path.write_text(csv)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "saddlepoint.cli",
            "train",
            "--data",
            str(path),
            *argv_extra,
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "mnist"],
        ["train", "--lr", "-1"],
        ["train", "--batch-size", "0"],
        ["train", "--dropout", "1.5"],
    ],
)
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


def run(argv, capsys):
    """``(exit status, stdout, stderr lines)`` of ``saddlepoint`` run in this process."""
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def small_table(rows=24, target=lambda i: i % 2, header="a,b,y"):
    lines = [header] + [f"{i * 0.1:.1f},{(i * 7) % 5},{target(i)}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def train_argv(path, tmp_path, *extra):
    return [
        "train",
        "--data",
        str(path),
        "--target",
        "y",
        "--epochs",
        "1",
        "--hidden",
        "4",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
        *extra,
    ]


def assert_refused_before_training(result, *fragments):
    """Exit status 2 and one line on stderr (no "training ..." line: nothing was trained)."""
    code, out, err = result
    assert code == 2 and out == "" and len(err) == 1, (code, out, err)
    assert err[0].startswith("saddlepoint: error: ")
    for fragment in fragments:
        assert fragment in err[0], err[0]


@pytest.mark.parametrize("cell", ["inf", "-Infinity", "1e999"])
def test_a_non_finite_regression_target_names_the_file_line_and_column(tmp_path, capsys, cell):
    """It trained and printed "test RMSE nan" with exit status 0. (A "nan" cell is a missing
    target now: its row is dropped, see the next test.)"""
    table = small_table(target=lambda i: f"{i * 0.37:.2f}").splitlines()
    table[5] = table[5].rsplit(",", 1)[0] + "," + cell
    (tmp_path / "t.csv").write_text("\n".join(table) + "\n")
    result = run(train_argv(tmp_path / "t.csv", tmp_path), capsys)
    assert_refused_before_training(result, f"t.csv line 6, column 'y': '{cell}' is not a finite number")
    assert not (tmp_path / "run").exists()


def test_a_missing_target_drops_its_row_and_says_so(tmp_path, capsys):
    lines = small_table(target=lambda i: f"{i * 0.37:.2f}").splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",nan"
    lines[7] = lines[7].rsplit(",", 1)[0] + ","
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    code, out, err = run(train_argv(tmp_path / "t.csv", tmp_path), capsys)
    assert code == 0, err
    assert err[0] == "dropped 2 rows whose target 'y' is missing"
    assert "test R2" in table(out)


def test_a_non_finite_feature_names_the_file_line_and_column_not_a_split_row(tmp_path, capsys):
    table = small_table().splitlines()
    table[9] = "inf," + table[9].split(",", 1)[1]
    (tmp_path / "t.csv").write_text("\n".join(table) + "\n")
    assert_refused_before_training(
        run(train_argv(tmp_path / "t.csv", tmp_path), capsys),
        "t.csv line 10, column 'a': 'inf' is not a finite number",
    )


def test_a_missing_feature_is_imputed(tmp_path, capsys):
    """'nan' and empty cells were refused; they are missing values now, filled with the
    training split's median."""
    table = small_table().splitlines()
    table[9] = "nan," + table[9].split(",", 1)[1]
    table[4] = "," + table[4].split(",", 1)[1]
    (tmp_path / "t.csv").write_text("\n".join(table) + "\n")
    code, out, err = run(train_argv(tmp_path / "t.csv", tmp_path), capsys)
    assert code == 0, err
    assert any("standardized (missing -> median" in line for line in err), err


def test_a_cell_over_the_csv_field_limit_is_one_line(tmp_path, capsys):
    table = small_table().splitlines()
    table[3] = "1" * 131_073 + "," + table[3].split(",", 1)[1]
    (tmp_path / "t.csv").write_text("\n".join(table) + "\n")
    assert_refused_before_training(
        run(train_argv(tmp_path / "t.csv", tmp_path), capsys),
        "t.csv line 4: a cell is longer than 131072 characters",
    )


def test_a_directory_named_like_a_csv_is_one_line(tmp_path, capsys):
    (tmp_path / "x.csv").mkdir()
    assert_refused_before_training(
        run(train_argv(tmp_path / "x.csv", tmp_path), capsys), "x.csv is a directory, not a CSV file"
    )


def test_out_naming_an_existing_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "t.csv").write_text(small_table())
    (tmp_path / "taken").write_text("mine")
    argv = train_argv(tmp_path / "t.csv", tmp_path)[:-1] + [str(tmp_path / "taken")]
    assert_refused_before_training(run(argv, capsys), "--out", "taken is an existing file, not a folder")
    assert (tmp_path / "taken").read_text() == "mine"


def read_only_folder(tmp_path):
    """A folder this process cannot write in: a read-only one, or /sys where root writes anyway."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").write_text("")
    except PermissionError:
        return folder
    return Path("/sys/saddlepoint-test-run")


def test_out_in_a_read_only_place_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "t.csv").write_text(small_table())
    out = read_only_folder(tmp_path) / "run"
    argv = train_argv(tmp_path / "t.csv", tmp_path)[:-1] + [str(out)]
    assert_refused_before_training(run(argv, capsys), f"--out {out} cannot be written")


def test_hidden_too_large_for_memory_is_refused_with_its_size(capsys):
    result = run(["train", "--data", "iris", "--hidden", "1000000,1000000", "--quiet"], capsys)
    assert_refused_before_training(
        result,
        "--hidden 1000000,1000000 makes a network of 1,000,009,000,003 parameters that needs about",
        "GiB",
    )


def test_a_byte_order_mark_does_not_hide_the_first_column(tmp_path, capsys):
    rows = [f"{i % 2},{i * 0.1:.1f},{i % 3}" for i in range(24)]
    (tmp_path / "t.csv").write_text("\ufeffy,a,b\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = run(train_argv(tmp_path / "t.csv", tmp_path), capsys)
    assert code == 0, err
    assert "test accuracy" in table(out)  # the 0/1 column 'y' was found and taken as classes


def test_a_single_class_target_is_refused(tmp_path, capsys):
    """It reported "test accuracy 0.0000"."""
    (tmp_path / "t.csv").write_text(small_table(target=lambda i: 1))
    assert_refused_before_training(
        run(train_argv(tmp_path / "t.csv", tmp_path), capsys),
        "t.csv: the target column 'y' holds a single class (1)",
    )
    # A text label, a single one once the rows without a target are dropped, and diagnose too.
    (tmp_path / "t.csv").write_text(small_table(target=lambda i: "yes" if i % 3 else ""))
    for command in ("train", "diagnose"):
        code, out, err = run([command, *train_argv(tmp_path / "t.csv", tmp_path)[1:]], capsys)
        assert code == 2 and out == "" and err[-1].startswith("saddlepoint: error: "), (code, out, err)
        assert err[-1].endswith(
            "t.csv: the target column 'y' holds a single class ('yes'): there is nothing to learn"
        )
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "option,value",
    [
        ("--early-stopping", "-1"),
        ("--warmup", "-2"),
        ("--lr", "inf"),
        ("--weight-decay", "-1"),
        ("--seed", "-1"),
        ("--test-size", "0"),
        ("--batch-size", "x"),
    ],
)
def test_out_of_range_options_are_one_line(capsys, option, value):
    """--early-stopping -1 was taken as off; --lr inf, --weight-decay -1 and --seed -1 ended
    in tracebacks."""
    assert_refused_before_training(
        run(["train", "--data", "iris", option, value, "--quiet"], capsys),
        f"argument {option}: ",
        "(see saddlepoint train --help)",
    )


def test_batchnorm_with_a_last_batch_of_one_sample_trains(tmp_path, capsys):
    """33 training samples in batches of 32 left a batch of one, which batch norm refuses."""
    (tmp_path / "t.csv").write_text(small_table(rows=44))
    argv = train_argv(
        tmp_path / "t.csv", tmp_path, "--batchnorm", "--val-fraction", "0", "--test-size", "0.25"
    )
    argv.remove("--quiet")  # for the "training ..." line, which says how many samples train
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "33 train" in next(line for line in err if line.startswith("training "))  # after the column table


def test_a_run_that_diverges_is_one_error_line_and_leaves_no_run_folder(tmp_path, capsys):
    out = tmp_path / "runs" / "run"
    code, _, err = run(
        [
            "train",
            "--data",
            "iris",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--epochs",
            "5",
            "--quiet",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 2 and len(err) == 1, err  # --quiet: the error line only
    assert err[0].startswith("saddlepoint: error: training diverged: the loss became") and "--lr" in err[0]
    assert not (tmp_path / "runs").exists()


def test_cells_beyond_float32_are_refused_with_their_line_and_column(tmp_path, capsys):
    """1e59 is a finite float64 that the float32 network turned into inf after training."""
    table = small_table().splitlines()
    table[4] = "1" * 60 + "," + table[4].split(",", 1)[1]
    (tmp_path / "t.csv").write_text("\n".join(table) + "\n")
    assert_refused_before_training(
        run(train_argv(tmp_path / "t.csv", tmp_path), capsys),
        "t.csv line 5, column 'a': '111",
        "is beyond the range of the model's numbers (±3.403e+38)",
    )


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_standardized_test_features_beyond_float32_are_refused():
    from argparse import Namespace

    import pandas as pd

    from saddlepoint.cli import UsageError, split_and_preprocess

    train = pd.DataFrame({"a": [0.0, 1e-30] * 10, "y": np.arange(20) % 2})
    test = pd.DataFrame({"a": [1e10], "y": [0]})
    args = Namespace(features=None, drop=None, test="test.csv", val_fraction=0)
    with pytest.raises(
        UsageError,
        match=r"feature 'a', standardized with the training split's "
        r"mean and scale, reaches inf in the test split",
    ):
        split_and_preprocess(train, train["y"].to_numpy(), "y", args, True, test=(test, test["y"].to_numpy()))


def test_version_prints_the_package_version():
    import saddlepoint

    result = subprocess.run(
        [sys.executable, "-m", "saddlepoint.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout == f"saddlepoint {saddlepoint.__version__}\n" and result.stderr == ""


@pytest.mark.parametrize(
    "argv,message",
    [
        ([], "the following arguments are required: command (see saddlepoint --help)"),
        (["fit"], "argument command: invalid choice: 'fit'"),
        (
            ["train", "--lr", "-1"],
            "argument --lr: must be in (0, inf), got -1 (see saddlepoint train --help)",
        ),
        (["train", "--lr"], "argument --lr: expected one argument (see saddlepoint train --help)"),
        (["train", "--epochs", "ten"], "argument --epochs: expected an integer, got 'ten'"),
        (["diagnose", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs' (choose from 'sgd', "),
        (["diagnose", "--bogus"], "unrecognized arguments: --bogus (see saddlepoint diagnose --help)"),
    ],
)
def test_argument_errors_are_one_line_with_a_hint_to_help(argv, message):
    """argparse printed 13 lines of usage before its error."""
    result = subprocess.run(
        [sys.executable, "-m", "saddlepoint.cli", *argv], capture_output=True, text=True, timeout=60
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and result.stdout == "" and len(lines) == 1, result
    assert lines[0].startswith("saddlepoint: error: ") and message in lines[0], lines
    assert "--help)" in lines[0]


def test_early_stopping_says_when_it_fired_and_which_weights_it_restored(capsys, tmp_path):
    code, out, err = run(["train", "--data", "iris", "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    stopped, best = metrics["epochs"], metrics["weights of epoch"]
    assert stopped < 200 and stopped == best + 11  # --early-stopping 10: 11 epochs without a better one
    assert f"early stopping at epoch {stopped}: the validation loss was best at epoch {best} (" in err[
        1
    ] and err[1].endswith(
        f"did not improve in the 11 epochs after it; restored the weights of epoch {best}"
    ), err
    assert table(out)["epochs"] == f"{stopped} (stopped early; weights of epoch {best})"
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert float(table(out)["train loss"]) == pytest.approx(history["loss"][best - 1], abs=5e-5)


def test_early_stopping_can_be_turned_off_and_is_off_without_a_validation_split(capsys, tmp_path):
    for i, extra in enumerate([["--early-stopping", "0"], ["--val-fraction", "0"]]):
        argv = ["train", "--data", "iris", "--epochs", "40", "--out", str(tmp_path / f"run{i}"), *extra]
        code, out, err = run(argv, capsys)
        assert code == 0 and table(out)["epochs"] == "40", (out, err)
        assert not any("early stopping" in line for line in err), err
    assert_refused_before_training(
        run(["train", "--data", "iris", "--val-fraction", "0", "--early-stopping", "5"], capsys),
        "--early-stopping needs a validation split: set --val-fraction > 0",
    )


def test_early_stopping_that_does_not_fire_says_so(capsys, tmp_path):
    code, out, err = run(["train", "--data", "iris", "--epochs", "5", "--out", str(tmp_path / "run")], capsys)
    assert code == 0 and table(out)["epochs"] == "5", err
    assert any(
        line.startswith(
            "early stopping did not fire: the validation loss was still improving at the last epoch, 5"
        )
        for line in err
    ), err


@pytest.mark.parametrize("data", ["iris", "breast_cancer"])
def test_classification_table_and_metrics_json_hold_balanced_accuracy_macro_f1_and_roc_auc(
    capsys, tmp_path, data
):
    code, out, err = run(["train", "--data", data, "--quiet", "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    result = table(out)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for row in ("test accuracy", "test balanced accuracy", "test macro F1"):
        assert 0.8 < metrics[row] <= 1 and float(result[row]) == pytest.approx(metrics[row], abs=5e-5)
    binary = data == "breast_cancer"
    assert ("test ROC AUC" in result) == binary and ("test ROC AUC" in metrics) == binary
    if binary:
        assert 0.9 < metrics["test ROC AUC"] <= 1


def test_the_regression_table_is_unchanged_in_kind(capsys, tmp_path):
    code, out, err = run(["train", "--data", "diabetes", "--quiet", "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    result = table(out)
    assert {"test RMSE", "test R2"} <= set(result) and "test accuracy" not in result
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert float(result["test R2"]) == pytest.approx(metrics["test R2"], abs=5e-5)


def test_a_notice_names_the_plot_extra_when_matplotlib_is_missing(capsys, tmp_path, without_matplotlib):
    argv = ["train", "--data", "iris", "--epochs", "3", "--out", str(tmp_path / "run")]
    code, _, err = run(argv, capsys)
    assert code == 0 and not (tmp_path / "run" / "loss.png").exists()
    assert err.count("plots skipped: matplotlib is not installed (pip install 'saddlepoint[plot]')") == 1, err
    code, _, err = run([*argv[:-1], str(tmp_path / "quiet"), "--quiet"], capsys)
    assert code == 0 and err == [], err  # --quiet: only the results, on stdout


def test_a_score_that_is_not_a_number_is_null_in_metrics_json(capsys, tmp_path):
    """R² of a test split of one sample is undefined: the table says nan, the JSON null."""
    (tmp_path / "t.csv").write_text(small_table(rows=8, target=lambda i: f"{i * 0.37:.2f}"))
    code, out, err = run(train_argv(tmp_path / "t.csv", tmp_path, "--test-size", "0.125"), capsys)
    assert code == 0 and table(out)["test R2"] == "nan", (out, err)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test R2"] is None
