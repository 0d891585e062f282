"""Mixed tables, written the ways users write them, through the installed command:
``saddlepoint train``, ``diagnose`` and ``predict`` each either work or fail with one line on
stderr and exit status 2 (issue 13). Tiny tables and models keep this quick."""

import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

FAST = ["--epochs", "2", "--hidden", "8", "--quiet"]
DIAGNOSE_FAST = [*FAST, "--hessian-samples", "40", "--max-hvps", "60", "--time-limit", "2"]


def command() -> list[str]:
    """The installed ``saddlepoint`` command (next to this Python), else ``python -m``."""
    script = Path(sys.executable).with_name("saddlepoint")
    return [str(script)] if script.exists() else [sys.executable, "-m", "saddlepoint.cli"]


def saddlepoint(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([*command(), *map(str, argv)], capture_output=True, text=True)


def works(result) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def fails_in_one_line(result, *fragments) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert lines and lines[-1].startswith("saddlepoint: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == "", result
    # Notices (a dropped row, the column table) may come before a refusal found after reading.
    assert all(not line.startswith("saddlepoint: error") for line in lines[:-1])
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    return lines[-1]


def mixed(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """Numbers, categories as strings, booleans, dates, an identifier, missing cells in the
    features and in the target, and a string target whose signal is in the categories."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["Oslo", "Lima", "Pune"], rows)
    rooms = rng.integers(1, 6, rows).astype(float)
    garden = rng.random(rows) < 0.5
    score = (city == "Oslo") * 2.0 + rooms * 0.3 + garden + rng.normal(0, 0.3, rows)
    frame = pd.DataFrame(
        {
            "listing": [f"L{i:05d}" for i in range(rows)],
            "city": city,
            "rooms": rooms,
            "area m2": (rooms * 20 + rng.normal(0, 5, rows)).round(1),
            "garden": garden,
            "listed": pd.date_range("2023-03-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "demand": np.where(score > np.median(score), "high", "low"),
        }
    )
    frame.loc[[2, rows - 1], "rooms"] = np.nan
    frame.loc[4, "city"] = np.nan
    frame.loc[7, "demand"] = np.nan
    return frame


def write_text(frame: pd.DataFrame, path: Path, sep: str = ",", bom: bool = False) -> Path:
    text = frame.to_csv(index=False, sep=sep)
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def write_gzip(frame: pd.DataFrame, path: Path) -> Path:
    path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    return path


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    frame = frame.assign(listed=pd.to_datetime(frame["listed"]))  # a real datetime column
    frame.to_parquet(path, index=False)
    return path


needs_pyarrow = pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="needs pyarrow")

FORMATS = [
    pytest.param("comma.csv", lambda f, p: write_text(f, p), id="csv"),
    pytest.param("bom-semicolon.csv", lambda f, p: write_text(f, p, ";", bom=True), id="bom-semicolon"),
    pytest.param("tabs.tsv", lambda f, p: write_text(f, p, "\t"), id="tsv"),
    pytest.param("tabs.txt", lambda f, p: write_text(f, p, "\t"), id="tab-txt"),
    pytest.param("packed.csv.gz", write_gzip, id="gzip"),
    pytest.param("columns.parquet", write_parquet, id="parquet", marks=needs_pyarrow),
]


@pytest.mark.parametrize("name,write", FORMATS)
def test_train_then_predict_new_rows(tmp_path, name, write):
    path = write(mixed(), tmp_path / name)
    run = tmp_path / "run"
    trained = works(saddlepoint("train", "--data", path, "--target", "demand", *FAST, "--out", run))
    assert "dropped 1 row whose target 'demand' is missing" in trained.stderr
    for column in ("city", "rooms", "garden", "listed", "listing"):
        assert f"  {column} " in trained.stderr, trained.stderr  # the column table
    assert (run / "columns.csv").exists() and (run / "preprocessing.json").exists()
    new = mixed(rows=9, seed=1).drop(columns=["demand"])
    new.loc[0, "city"] = "Rome"  # a category never seen in training: ignored, not an error
    new_path = write(new, tmp_path / ("new-" + name))
    predicted = works(saddlepoint("predict", run, "--data", new_path))
    lines = predicted.stdout.strip().splitlines()
    assert len(lines) == 10 and lines[0].startswith("listing,")
    assert lines[0].endswith("demand,P(high),P(low)")
    assert {line.split(",")[-3] for line in lines[1:]} <= {"high", "low"}


@pytest.mark.parametrize("name,write", FORMATS)
def test_diagnose_a_mixed_table(tmp_path, name, write):
    path = write(mixed(), tmp_path / name)
    result = works(
        saddlepoint(
            "diagnose", "--data", path, "--target", "demand", *DIAGNOSE_FAST, "--out", tmp_path / "report"
        )
    )
    assert "verdict" in result.stdout
    assert (tmp_path / "report" / "columns.csv").exists()


def test_a_regression_target_with_features_and_drop(tmp_path):
    frame = mixed().assign(price=lambda f: 1000 + 100 * f["rooms"].fillna(3) + 3 * f["area m2"])
    frame = frame.drop(columns=["demand"])
    path = write_text(frame, tmp_path / "prices.csv")
    run = tmp_path / "run"
    works(
        saddlepoint(
            "train",
            "--data",
            path,
            "--target",
            "price",
            "--features",
            "city,rooms,garden",
            *FAST,
            "--out",
            run,
        )
    )
    columns = pd.read_csv(run / "columns.csv")
    used = set(columns.loc[~columns["role"].isin(["dropped", "identifier"]), "name"])
    assert used == {"city", "rooms", "garden"}
    # The new table needs only the columns the model reads.
    new = write_text(frame[["city", "rooms", "garden"]].head(5), tmp_path / "new.csv")
    out = tmp_path / "predictions.csv"
    works(saddlepoint("predict", run, "--data", new, "--out", out))
    assert list(pd.read_csv(out).columns) == ["price"]
    works(
        saddlepoint(
            "train",
            "--data",
            path,
            "--target",
            "price",
            "--drop",
            "area m2,listed",
            *FAST,
            "--out",
            tmp_path / "r2",
        )
    )


def test_refusals_are_one_line_with_exit_status_2(tmp_path):
    table = write_text(mixed(), tmp_path / "t.csv")
    train = ["train", "--data", table, *FAST]
    fails_in_one_line(
        saddlepoint(*train, "--target", "nope", "--out", tmp_path / "a"), "has no column 'nope'"
    )
    fails_in_one_line(
        saddlepoint(*train, "--target", "demand", "--features", "city,nope", "--out", tmp_path / "b"), "nope"
    )
    fails_in_one_line(
        saddlepoint(*train, "--target", "demand", "--task", "regression", "--out", tmp_path / "c"),
        "the target column 'demand'",
        "regression",
    )
    one_class = write_text(mixed().assign(demand="high"), tmp_path / "one.csv")
    fails_in_one_line(
        saddlepoint("train", "--data", one_class, "--target", "demand", *FAST, "--out", tmp_path / "d"),
        "holds a single class",
        "high",
    )
    empty_target = write_text(mixed().assign(demand=np.nan), tmp_path / "empty.csv")
    fails_in_one_line(
        saddlepoint("train", "--data", empty_target, "--target", "demand", *FAST, "--out", tmp_path / "e"),
        "'demand'",
    )
    for folder in ("a", "b", "c", "d", "e"):
        assert not (tmp_path / folder).exists()


def test_predict_refusals_are_one_line_with_exit_status_2(tmp_path):
    table = write_text(mixed(), tmp_path / "t.csv")
    run = tmp_path / "run"
    works(saddlepoint("train", "--data", table, "--target", "demand", *FAST, "--out", run))
    lacking = write_text(mixed().drop(columns=["rooms", "demand"]), tmp_path / "lacking.csv")
    fails_in_one_line(saddlepoint("predict", run, "--data", lacking), f"{lacking} has no column 'rooms'")
    fails_in_one_line(saddlepoint("predict", tmp_path, "--data", table), "not a saddlepoint run folder")
    fails_in_one_line(saddlepoint("predict", run, "--data", tmp_path / "none.csv"), "none.csv does not exist")
    fails_in_one_line(saddlepoint("predict", run), "--data")
    broken = tmp_path / "broken.csv"
    broken.write_text("listing,city\nL1,Oslo,extra\n")
    fails_in_one_line(saddlepoint("predict", run, "--data", broken), "broken.csv line 2")


def test_diagnose_refuses_a_test_table_without_a_column(tmp_path):
    table = write_text(mixed(), tmp_path / "t.csv")
    test = write_text(mixed(seed=3).drop(columns=["garden"]), tmp_path / "test.csv")
    fails_in_one_line(
        saddlepoint(
            "diagnose",
            "--data",
            table,
            "--target",
            "demand",
            "--test",
            test,
            *DIAGNOSE_FAST,
            "--out",
            tmp_path / "r",
        ),
        f"--test {test} has no column 'garden'",
    )
