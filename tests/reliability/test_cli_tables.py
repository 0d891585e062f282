"""``saddlepoint train`` fed malformed tables and options, as a hostile user would.

Every bad input must end with exit status 2 and exactly one line on stderr that names the
problem (the file, and the line and column where there is one), before any training; valid
tables, however they are written, must still train. Most cases call ``cli.main`` in this
process (a traceback there fails the test); a few run the installed command in a subprocess.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saddlepoint.cli import main

FAST = ["--epochs", "1", "--hidden", "2", "--batch-size", "8", "--quiet"]


def numbers(rows: int, target=lambda i: i % 2) -> str:
    """A small valid table: columns a, b and the target y."""
    return "a,b,y\n" + "".join(f"{i * 0.5:.1f},{(i * 7) % 5},{target(i)}\n" for i in range(rows))


def with_row(line: int, row: str, rows: int = 16) -> str:
    """``numbers(rows)`` with file line ``line`` (1 is the header) replaced by ``row``."""
    lines = numbers(rows).splitlines()
    lines[line - 1] = row
    return "\n".join(lines) + "\n"


# (case, file contents, extra options, fragments the one error line must hold). "{f}" is the
# file's path.
MALFORMED = [
    ("empty file", b"", [], ["{f} is empty"]),
    ("blank lines only", "\n\n\n", [], ["{f} is empty"]),
    ("header only", "a,b,y\n", [], ["{f} has a header but no data rows"]),
    ("header and blank rows", "a,b,y\n,,\n\n", [], ["{f} has a header but no data rows"]),
    ("ragged short row", with_row(4, "1,2"), [], ["{f} line 4 has 2 cells, the header has 3"]),
    ("ragged long row", with_row(7, "1,2,3,4"), [], ["{f} line 7 has 4 cells, the header has 3"]),
    ("quoted delimiter", with_row(3, '"1,5",2,0'), [], ["{f} line 3, column 'a': '1,5' is not a number"]),
    ("quoted newline", with_row(5, '1,"2\n3",0'), [], ["{f} line 5, column 'b': '2\\n3' is not a number"]),
    ("unclosed quote", with_row(6, '"1,2,0'), [], ["{f} line 6 has 1 cells, the header has 3"]),
    (
        "cell over the csv field limit",
        with_row(9, "1," + "2" * 131_073 + ",0"),
        [],
        ["{f} line 9: a cell is longer than 131072 characters"],
    ),
    (
        "huge number",
        with_row(9, "1," + "9" * 100_000 + ",0"),
        [],
        ["{f} line 9, column 'b': '99999", "(100000 characters) is not a finite number"],
    ),
    (
        "beyond float32",
        with_row(9, "1,-" + "9" * 60 + ",0"),
        [],
        ["{f} line 9, column 'b': '-999", "is beyond the range of the model's numbers (±3.403e+38)"],
    ),
    ("text cell", with_row(8, "1,two,0"), [], ["{f} line 8, column 'b': 'two' is not a number"]),
    ("NUL byte", with_row(2, "1\x00,2,0"), [], ["{f} line 2, column 'a': '1\\x00' is not a number"]),
    *[
        (
            f"{value} feature",
            with_row(10, f"{value},2,0"),
            [],
            [f"{{f}} line 10, column 'a': '{value}' is not a finite number"],
        )
        for value in ("inf", "-inf", "Infinity", "1e400")
    ],
    *[
        (
            f"{value} target",
            with_row(12, f"1,2,{value}"),
            ["--task", "regression"],
            [f"{{f}} line 12, column 'y': '{value}' is not a finite number"],
        )
        for value in ("inf", "-1e999")
    ],
    (
        "single class",
        numbers(16, target=lambda i: 3),
        [],
        ["{f}: the target column 'y' holds a single class (3)"],
    ),
    (
        "constant regression target",
        numbers(16, target=lambda i: 0.5),
        ["--task", "regression"],
        ["{f}: the target column 'y' is constant (0.5)"],
    ),
    (
        "fractional classes",
        numbers(16, target=lambda i: i % 2 + 0.5),
        ["--task", "classification"],
        ["{f}: the target column 'y' needs integer class labels"],
    ),
    (
        "missing target column",
        "a,b,z\n1,2,0\n",
        [],
        ["{f} has no column 'y'; its columns are ['a', 'b', 'z']"],
    ),
    (
        "duplicate column",
        "a,a,y\n1,2,0\n",
        [],
        ["{f} line 1: the column name 'a' appears twice (columns 1 and 2)"],
    ),
    ("empty column name", "a,,y\n1,2,0\n", [], ["{f} line 1, column 2: the header cell is empty"]),
    ("binary junk", bytes(range(256)) * 4, [], ["{f} line 2: byte 0x80 is not UTF-8 text"]),
    ("PNG header", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", [], ["{f} line 1: byte 0x89 is not UTF-8 text"]),
    (
        "Latin-1 text",
        "a,b,y\n1,2,0\ncaf\xe9,2,1\n".encode("latin-1"),
        [],
        ["{f} line 3: byte 0xe9 is not UTF-8 text"],
    ),
    (
        "no training sample left",
        numbers(4, target=lambda i: i + 0.5),
        ["--test-size", "0.99"],
        ["--test-size 0.99 cannot split 4 samples"],
    ),
    (
        "no validation sample left",
        numbers(2, target=lambda i: i + 0.5),
        [],
        ["--val-fraction 0.1 cannot split 1 samples"],
    ),
    (
        "a class of one sample",
        numbers(9, target=lambda i: int(i == 0)),
        [],
        ["--test-size 0.25 cannot split 9 samples", "only 1 member"],
    ),
    (
        "validation split too small",
        numbers(6),
        ["--val-fraction", "0.1"],
        ["--val-fraction 0.1 cannot split 4 samples"],
    ),
    ("no target option", numbers(16), ["--target", ""], ["--target COLUMN is required with a CSV file"]),
]


def write(path: Path, contents) -> Path:
    if isinstance(contents, bytes):
        path.write_bytes(contents)
    else:
        path.write_text(contents, encoding="utf-8", newline="")
    return path


def train(path, capsys, *extra, out=None):
    """``(status, stdout, stderr lines)`` of ``saddlepoint train`` on ``path``, in process."""
    out = out or Path(path).parent / "run"
    code = main(["train", "--data", str(path), "--target", "y", *FAST, "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def assert_one_line_error(result, fragments):
    code, out, err = result
    assert code == 2 and out == "" and len(err) == 1, (code, out, err)
    assert err[0].startswith("saddlepoint: error: ") and "Traceback" not in err[0]
    for fragment in fragments:
        assert fragment in err[0], (fragment, err[0])


def test_malformed_tables_give_one_line_and_exit_2(tmp_path, capsys, cases):
    for i, (case, contents, extra, fragments) in enumerate(MALFORMED):
        path = write(tmp_path / f"case{i}.csv", contents)
        out = tmp_path / f"run{i}"
        result = train(path, capsys, *extra, out=out)
        assert_one_line_error(result, [f.format(f=path) for f in fragments])
        assert not out.exists(), case  # refused before the run folder, let alone training
        cases.add()


def unreadable(tmp_path) -> list:
    """Files that cannot be read: a symbolic link to itself (for anyone), and a file without
    read permission where this process honours permissions (not as root)."""
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    paths = [(loop, "cannot be read: Too many levels of symbolic links")]
    locked = write(tmp_path / "locked.csv", numbers(16))
    locked.chmod(0)
    if not os.access(locked, os.R_OK):
        paths.append((locked, "cannot be read: Permission denied"))
    return paths


def test_files_that_are_not_readable_tables(tmp_path, capsys, cases, monkeypatch):
    folder = tmp_path / "x.csv"
    folder.mkdir()
    checks = [
        (folder, "x.csv is a directory, not a CSV file"),
        (tmp_path / "missing.csv", "missing.csv does not exist"),
        *unreadable(tmp_path),
    ]
    for path, fragment in checks:
        assert_one_line_error(train(path, capsys), [str(path), fragment])
        cases.add()
    # Permission denied, whoever runs the tests (root reads a file without permissions).
    denied = write(tmp_path / "denied.csv", numbers(16))

    def refuse(self):
        if self == denied:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self)

    original = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert_one_line_error(train(denied, capsys), [f"{denied} cannot be read: Permission denied"])
    cases.add()


def read_only_folder(tmp_path) -> Path:
    """A folder this process cannot write in: a read-only one, or /sys for root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    return folder if not os.access(folder, os.W_OK) else Path("/sys")


@pytest.mark.parametrize(
    "option,value,fragment",
    [
        ("--early-stopping", "-1", "argument --early-stopping: must be in [0, inf), got -1"),
        ("--warmup", "-1", "argument --warmup: must be in [0, inf), got -1"),
        ("--lr", "0", "argument --lr: must be in (0, inf), got 0"),
        ("--lr", "nan", "argument --lr: must be in (0, inf), got nan"),
        ("--lr", "inf", "argument --lr: must be in (0, inf), got inf"),
        ("--weight-decay", "-0.1", "argument --weight-decay: must be in [0, inf), got -0.1"),
        ("--weight-decay", "nan", "argument --weight-decay: must be in [0, inf), got nan"),
        ("--batch-size", "0", "argument --batch-size: must be in (0, inf), got 0"),
        ("--batch-size", "2.5", "argument --batch-size: expected an integer, got '2.5'"),
        ("--epochs", "-3", "argument --epochs: must be in (0, inf), got -3"),
        ("--seed", "-1", "argument --seed: must be in [0, inf), got -1"),
        ("--dropout", "1", "argument --dropout: must be in [0, 1), got 1"),
        ("--test-size", "0", "argument --test-size: must be in (0, 1), got 0"),
        ("--val-fraction", "1.5", "argument --val-fraction: must be in [0, 1), got 1.5"),
        ("--hidden", "8,-1", "argument --hidden: sizes must be >= 0, got '8,-1'"),
        ("--hidden", "wide", "argument --hidden: must be comma-separated integers, got 'wide'"),
        (
            "--hidden",
            "1000000,1000000",
            "--hidden 1000000,1000000 makes a network of 1,000,006,000,002 parameters that needs about",
        ),
        ("--optimizer", "lbfgs", "argument --optimizer: invalid choice: 'lbfgs'"),
        ("--threads", "0", "argument --threads: must be in (0, inf), got 0"),
        ("--bogus", "1", "unrecognized arguments: --bogus 1"),
        ("--out", "{table}", "is an existing file, not a folder"),
        ("--out", "{table}/run", "cannot be written: Not a directory"),
        ("--out", "{read_only}/run", "cannot be written"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(tmp_path, capsys, cases, option, value, fragment):
    table = write(tmp_path / "t.csv", numbers(16))
    value = value.format(table=table, read_only=read_only_folder(tmp_path))
    argv = [
        "train",
        "--data",
        str(table),
        "--target",
        "y",
        *FAST,
        "--out",
        str(tmp_path / "run"),
        option,
        value,
    ]
    code = main(argv)
    captured = capsys.readouterr()
    assert_one_line_error((code, captured.out, captured.err.strip().splitlines()), [fragment])
    assert table.read_text() == numbers(16)
    cases.add()


VALID = [
    ("plain", numbers(24), "test accuracy"),
    ("Windows line ends", numbers(24).replace("\n", "\r\n"), "test accuracy"),
    (
        "byte-order mark, target first",
        "\ufeffy,a\n" + "".join(f"{i % 2},{i}\n" for i in range(24)),
        "test accuracy",
    ),
    (
        "quoted numbers and spaces",
        "a,b,y\n" + "".join(f'" {i}", {i % 3} ,"{i % 2}"\n' for i in range(24)),
        "test accuracy",
    ),
    ("blank lines and no final newline", numbers(24).replace("\n", "\n\n").rstrip("\n"), "test accuracy"),
    ("regression target", numbers(24, target=lambda i: f"{i * 0.37:.3f}"), "test R2"),
    ("quoted header with a comma", '"a,1",b,y\n' + numbers(24).split("\n", 1)[1], "test accuracy"),
]


# Missing cells (pandas' markers: '', NA, NaN, nan, null, ...) are imputed in features (issue
# 13), and a row whose target is missing is dropped and counted: (case, contents, options, the
# line stderr must hold or None).
MISSING = [
    ("empty cell", with_row(8, "1,,0"), [], None),
    *[(f"{value} feature", with_row(10, f"{value},2,0"), [], None) for value in ("nan", "NaN", "NA", "null")],
    *[
        (
            f"{value} target",
            with_row(12, f"1,2,{value}"),
            ["--task", "regression"],
            "dropped 1 row whose target 'y'",
        )
        for value in ("nan", "")
    ],
]


def test_missing_cells_are_imputed_and_rows_without_a_target_dropped(tmp_path, capsys, cases):
    for i, (case, contents, extra, line) in enumerate(MISSING):
        code, out, err = train(
            write(tmp_path / f"m{i}.csv", contents), capsys, *extra, out=tmp_path / f"run{i}"
        )
        assert code == 0 and "train loss" in out, (case, err)
        assert not any("Traceback" in e for e in err), (case, err)
        if line is not None:
            assert any(line in e for e in err), (case, err)
        cases.add()


def test_valid_tables_still_train(tmp_path, capsys, cases):
    for i, (case, contents, row) in enumerate(VALID):
        code, out, err = train(write(tmp_path / f"ok{i}.csv", contents), capsys, out=tmp_path / f"run{i}")
        assert code == 0, (case, err)
        assert any(line.startswith(row) for line in out.splitlines()), (case, out)
        cases.add()


PIECES = st.sampled_from(
    [
        "0",
        "7",
        "-",
        ".",
        "e",
        "1e3",
        "nan",
        "inf",
        "x",
        "y",
        "é",
        " ",
        '"',
        ",",
        "\n",
        "\r\n",
        "\n\n",
        "\ufeff",
        "\x00",
        '"1,2"',
        '"3\n4"',
        "1" * 60,
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(2, 30), edits=st.lists(st.tuples(st.integers(0, 2000), PIECES), max_size=3))
def test_any_edited_table_trains_or_gives_one_line(tmp_path_factory, capsys, cases, rows, edits):
    """A valid table with up to three troublesome pieces inserted anywhere (the header
    included): whatever it then holds, the command trains (exit 0 and a result table) or
    refuses in one line with exit 2, and never raises."""
    text = numbers(rows)
    for position, piece in edits:
        at = position % (len(text) + 1)
        text = text[:at] + piece + text[at:]
    path = write(tmp_path_factory.mktemp("edited") / "t.csv", text)
    code, out, err = train(path, capsys)
    if code == 0:  # stderr: the column table and notices (--quiet: no "training ..." line); no warning
        assert "train loss" in out and not any(line.startswith("training") for line in err), err
        assert not any("Warning" in line or "Traceback" in line for line in err), err
    else:
        assert_one_line_error((code, out, err), [])
    cases.add()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_any_bytes_give_one_line(tmp_path_factory, capsys, cases, data):
    path = write(tmp_path_factory.mktemp("bytes") / "t.csv", data)
    code, out, err = train(path, capsys)
    assert_one_line_error((code, out, err), [str(path)])
    cases.add()


def test_installed_command_in_a_subprocess(tmp_path, cases):
    """The console entry point, as a shell runs it: a few cases end to end."""
    folder = tmp_path / "x.csv"
    folder.mkdir()
    runs = [
        (write(tmp_path / "empty.csv", b""), 2, "is empty"),
        (folder, 2, "is a directory"),
        (write(tmp_path / "inf.csv", with_row(4, "1,2,inf")), 2, "line 4, column 'y'"),
        (write(tmp_path / "ok.csv", numbers(24)), 0, "train loss"),
    ]
    for path, status, fragment in runs:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "saddlepoint.cli",
                "train",
                "--data",
                str(path),
                "--target",
                "y",
                *FAST,
                "--out",
                str(tmp_path / "run"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = result.stderr.strip().splitlines()
        if status == 0:  # the result table on stdout; the column table on stderr
            assert result.returncode == 0 and fragment in result.stdout and lines, result
        else:
            assert result.returncode == status and len(lines) == 1 and fragment in lines[0], result
        assert "Traceback" not in result.stderr
        cases.add()


@pytest.mark.parametrize("command", ["train", "diagnose"])
def test_too_many_threads_is_one_line_in_every_command(capsys, cases, command):
    """diagnose showed set_num_threads' ValueError as a traceback."""
    code = main([command, "--data", "iris", "--threads", "100000", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert_one_line_error((code, "", err), ["--threads 100000: "])
    cases.add()
