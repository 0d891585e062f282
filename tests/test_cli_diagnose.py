"""The ``saddlepoint diagnose`` command."""

import json
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytest
from test_cli import write_csv

from saddlepoint.cli import main
from saddlepoint.diagnose import VERDICTS


def rows(out: str) -> dict:
    """The name/value rows after the Markdown table."""
    lines = [line for line in out.splitlines() if line and not line.startswith("|")]
    return dict(line.split("  ", 1) for line in lines)


KINDS = ("local minimum", "local maximum", "saddle point", "degenerate")


def check_point_agrees_with_its_row(point: dict, result: dict) -> None:
    """A critical-point kind only where the gradient is small; the printed row says the same."""
    row = result["critical point"]
    if point["critical"]:
        assert point["kind"] in KINDS and row.startswith(point["kind"])
    else:
        assert point["kind"] == "not a critical point" and row.startswith("not a critical point")
        assert not any(kind in row for kind in KINDS)
        assert f"{point['curvature']} curvature" in row
    analysis = result["Hessian analysis"]
    assert ("NOT converged" in analysis) == (not point["converged"])
    assert f"{point['hvps']} Hessian-vector products" in analysis


def test_diagnose_digits_writes_a_report_folder(capsys, tmp_path):
    out = tmp_path / "report"
    assert main(["diagnose", "--hidden", "24", "--epochs", "10", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = {k.strip(): v.strip() for k, v in rows(printed).items()}
    assert result["verdict"] in VERDICTS and "| model |" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["guidance"]["verdict"] == result["verdict"]
    assert set(report["guidance"]["models"]) == {"model", "simpler", "larger"}
    # The 64 pixels are measurements (numbers, never one-hot categories); the 4 that are
    # constant in the training split are dropped: 60 inputs.
    assert (
        report["guidance"]["models"]["larger"]["n_parameters"] == 60 * 24 + 24 + 24 * 24 + 24 + 24 * 10 + 10
    )
    point = report["critical_point"]
    check_point_agrees_with_its_row(point, result)
    assert point["method"] == "full" and point["n_parameters"] == 60 * 24 + 24 + 24 * 10 + 10
    assert len(point["eigenvalues"]) == point["n_parameters"]
    assert point["converged"] and point["hvps"] == point["n_parameters"] and point["residuals"] is None
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
    argv = [
        "diagnose",
        "--data",
        str(tmp_path / "train.csv"),
        "--target",
        "y",
        "--test",
        str(tmp_path / "test.csv"),
        "--hidden",
        "64,64",
        "--epochs",
        "40",
        "--quiet",
        "--hessian-samples",
        "200",
        "--out",
        str(tmp_path / "report"),
    ]
    assert main(argv) == 0
    result = rows(capsys.readouterr().out)
    assert result["verdict"].strip() == "mismatch", result
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["guidance"]["shift"]["shifted"] and report["critical_point"]["method"] == "lanczos"
    # The shifted feature is named by its column, as in the table, not as "#1".
    shift = report["guidance"]["shift"]
    assert shift["top_features"][0][0] == 1 and shift["top_names"][0] == "b"
    assert sorted(shift["top_names"]) == ["a", "b", "c"]
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "(largest: b=" in markdown and "#1" not in markdown


def test_report_plots_when_matplotlib_is_installed(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    assert (
        main(["diagnose", "--data", "iris", "--hidden", "8", "--epochs", "5", "--quiet", "--out", str(out)])
        == 0
    )
    for name in ("learning_curves.png", "hessian_spectrum.png", "landscape.png"):
        assert (out / name).stat().st_size > 1000
        assert f"]({name})" in (out / "report.md").read_text()


def test_diagnose_studies_batch_sizes_in_two_jobs_into_the_report(capsys, tmp_path):
    out = tmp_path / "report"
    argv = ["diagnose", "--data", "iris", "--hidden", "8", "--epochs", "4", "--quiet", "--out", str(out)]
    assert main([*argv, "--batch-sizes", "4,64", "--jobs", "2"]) == 0
    result = rows(capsys.readouterr().out)
    study = json.loads((out / "report.json").read_text())["batch_sizes"]
    assert [r["batch_size"] for r in study["rows"]] == [4, 64] and study["complete"]
    assert all(r["epochs_trained"] == 4 for r in study["rows"])
    # Batches of 4 make 16x the updates of batches of 64 in an epoch.
    assert study["rows"][0]["updates_per_epoch"] > 10 * study["rows"][1]["updates_per_epoch"]
    best = max(study["rows"], key=lambda r: r["val_metric"])
    assert result["batch sizes"].strip() == (
        f"4, 64 studied (report.md); best validation accuracy {best['val_metric']:.4g} at batch "
        f"{best['batch_size']}"
    )
    report = (out / "report.md").read_text()
    assert "## Small vs large batch" in report and "batch-size study, 4 epochs each" in report
    if find_spec("matplotlib") is not None:
        assert (out / "batch_sizes.png").stat().st_size > 1000 and "](batch_sizes.png)" in report


@pytest.mark.parametrize("sizes", ["4,x", "0,8", ""])
def test_bad_batch_sizes_are_refused(sizes, capsys):
    try:
        code = main(["diagnose", "--data", "iris", "--quiet", "--batch-sizes", sizes])
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and "--batch-sizes: must be comma-separated" in capsys.readouterr().err


def test_diagnose_help_and_errors():
    result = subprocess.run(
        [sys.executable, "-m", "saddlepoint.cli", "diagnose", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in [
        "--data",
        "--target",
        "--test",
        "--task",
        "--hidden",
        "--larger",
        "--optimizer",
        "--lr",
        "--epochs",
        "--batch-size",
        "--val-fraction",
        "--hessian-samples",
        "--out",
    ]:
        assert option in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "saddlepoint.cli", "diagnose", "--test", "x.csv", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "--test needs --data to be a CSV file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_diagnose_keeps_the_hessian_analysis_within_max_hvps(capsys, tmp_path):
    out = tmp_path / "report"
    argv = [
        "diagnose",
        "--hidden",
        "24",
        "--epochs",
        "3",
        "--quiet",
        "--max-hvps",
        "40",
        "--hessian-samples",
        "200",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    result = {k.strip(): v.strip() for k, v in rows(capsys.readouterr().out).items()}
    point = json.loads((out / "report.json").read_text())["critical_point"]
    # 1,834 parameters would take 1,834 products in full: Lanczos within the 40 instead
    assert point["method"] == "lanczos" and 0 < point["hvps"] <= 40 and len(point["residuals"]) == 2
    check_point_agrees_with_its_row(point, result)
    if not point["converged"]:
        assert "budget of 40 HVPs" in point["stopped"]
    report = json.loads((out / "report.json").read_text())
    assert report["landscape"]["complete"] is True


def test_threads_govern_numpys_blas_too(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    import saddlepoint
    from saddlepoint import diagnose

    seen = []

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):  # stands in for the training: what threads does it get?
        seen.append({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
        seen.append(saddlepoint.get_num_threads())
        raise Stop

    monkeypatch.setattr(diagnose, "guide", stop)
    threads = saddlepoint.get_num_threads()
    try:
        with threadpool_limits(limits=2, user_api="blas"), pytest.raises(Stop):
            main(["diagnose", "--hidden", "8", "--quiet", "--threads", "1"])
    finally:
        saddlepoint.set_num_threads(threads)
    assert seen == [{1}, 1]


def test_diagnose_out_of_time_says_what_it_could_not_do(capsys, tmp_path):
    out = tmp_path / "report"
    argv = [
        "diagnose",
        "--hidden",
        "64",
        "--epochs",
        "2",
        "--quiet",
        "--time-limit",
        "0.001",
        "--hessian-samples",
        "200",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    result = {k.strip(): v.strip() for k, v in rows(capsys.readouterr().out).items()}
    report = json.loads((out / "report.json").read_text())
    point = report["critical_point"]
    # 4,810 parameters: the full Hessian would not fit, Lanczos got its first product only
    assert point["method"] == "lanczos" and not point["converged"] and point["minimum_ratio"] is None
    assert point["stopped"] == "time limit of 0.001 s"
    check_point_agrees_with_its_row(point, result)
    assert result["minimum ratio"] == "not estimated (no budget left for it)"
    assert "unconfirmed" in result["critical point"] or point["curvature"] == "indefinite"
    assert report["landscape"]["complete"] is False
    assert "The loss landscape is incomplete" in (out / "report.md").read_text()


def test_diagnose_checks_its_run_folder_and_memory_before_training(capsys, tmp_path, monkeypatch):
    import saddlepoint.diagnose as diagnose

    def no_training(*args, **kwargs):
        raise AssertionError("diagnose trained before refusing its inputs")

    monkeypatch.setattr(diagnose, "guide", no_training)
    a_file = tmp_path / "report"
    a_file.write_text("not a folder")
    assert main(["diagnose", "--data", "iris", "--quiet", "--out", str(a_file)]) == 2
    assert "is an existing file, not a folder" in capsys.readouterr().err
    assert (
        main(
            [
                "diagnose",
                "--data",
                "iris",
                "--quiet",
                "--larger",
                "1000000,1000000",
                "--out",
                str(tmp_path / "fresh"),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "--larger 1000000,1000000 makes a network of" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "fresh").exists()


def test_diagnose_names_bundled_columns_and_says_when_it_skips_plots(capsys, tmp_path, without_matplotlib):
    out = tmp_path / "report"
    argv = ["diagnose", "--data", "iris", "--hidden", "8", "--epochs", "3", "--hessian-samples", "50"]
    assert main([*argv, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    notice = "plots skipped: matplotlib is not installed (pip install 'saddlepoint[plot]')"
    assert captured.err.splitlines().count(notice) == 1, captured.err
    assert not list(out.glob("*.png"))
    names = json.loads((out / "report.json").read_text())["guidance"]["shift"]["top_names"]
    assert sorted(names) == ["petal length (cm)", "petal width (cm)", "sepal length (cm)", "sepal width (cm)"]
    shift = rows(captured.out)["feature shift"].strip()
    assert shift.startswith("training vs test: classifier AUC ") and "(largest: " in shift, shift
    assert all(f"{name}=" in shift for name in names)
    assert "#" not in shift and f"(largest: {names[0]}=" in (out / "report.md").read_text()
    assert main([*argv, "--quiet", "--out", str(tmp_path / "quiet")]) == 0
    quiet = capsys.readouterr().err
    assert quiet == "", quiet  # --quiet: no notices, no lines saying what trains and what is analysed
