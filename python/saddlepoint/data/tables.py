"""Tables: scikit-learn's bundled data sets and CSV files."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

#: scikit-learn's bundled data sets (no download): name -> (loader name, task).
BUNDLED = {
    "digits": ("load_digits", "classification"),
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}


def load_bundled(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``(X, y, task)`` for one of scikit-learn's bundled data sets (see :data:`BUNDLED`)."""
    if name not in BUNDLED:
        raise ValueError(f"data must be one of {sorted(BUNDLED)}, got {name!r}")
    import sklearn.datasets

    loader, task = BUNDLED[name]
    X, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y), task


class TableError(ValueError):
    """A table that cannot be used: the message is one line naming the file, and the line and
    column where there is one."""


def _short(text: str, limit: int = 40) -> str:
    """``repr(text)``, cut to about ``limit`` characters (a cell can be megabytes long)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def _read_text(path) -> str:
    """The file's text, decoded as UTF-8 without a byte-order mark."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise TableError(f"{path} is a directory, not a CSV file") from None
    except FileNotFoundError:
        raise TableError(f"{path} does not exist") from None
    except OSError as e:
        raise TableError(f"{path} cannot be read: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TableError(
            f"{path} line {line}: byte 0x{data[e.start]:02x} is not UTF-8 text; save the table as UTF-8 CSV"
        ) from None


def _read_rows(path, text: str) -> list[tuple[int, list[str]]]:
    """``(line, cells)`` for every row, ``line`` being where the row starts in the file (a
    quoted cell can span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as e:
            if "field larger than field limit" in str(e):
                raise TableError(
                    f"{path} line {line}: a cell is longer than {csv.field_size_limit()} characters"
                ) from None
            raise TableError(f"{path} line {line}: {e}") from None
        rows.append((line, row))


def _check_header(path, header: list[str], target: str) -> None:
    names = ", ".join(_short(h) for h in header[:20]) + (", ..." if len(header) > 20 else "")
    if target not in header:
        raise TableError(f"{path} has no column {_short(target)}; its columns are [{names}]")
    for j, name in enumerate(header):
        if name == "":
            raise TableError(f"{path} line 1, column {j + 1}: the header cell is empty")
        if name in header[:j]:
            raise TableError(
                f"{path} line 1: the column name {_short(name)} appears twice "
                f"(columns {header.index(name) + 1} and {j + 1})"
            )


def _parse_number(path, line: int, column: str, cell: str, limit: float) -> float:
    where = f"{path} line {line}, column {_short(column)}"
    try:
        value = float(cell)
    except ValueError:
        raise TableError(f"{where}: {_short(cell)} is not a number") from None
    if not math.isfinite(value):
        raise TableError(f"{where}: {_short(cell.strip())} is not a finite number")
    if abs(value) > limit:
        raise TableError(
            f"{where}: {_short(cell.strip())} is beyond the range of the model's numbers (±{limit:.4g})"
        )
    return value


def load_csv(path, target: str, dtype=np.float64) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X, y, feature_names)`` (float64) from a UTF-8 CSV file with a header row; every cell
    must be a finite number within the range of ``dtype`` (the model's, float32 or float64).

    Every problem raises :class:`TableError` (a ValueError) with one line naming the file, the
    line and the column: no such file, a directory, bytes that are not UTF-8, a cell over the
    ``csv`` module's field limit, a missing target column, an empty or repeated column name,
    rows of the wrong length, a cell that is not a number, NaN or infinity, no data rows. A
    UTF-8 byte-order mark is ignored; rows of blank cells are skipped.
    """
    text = _read_text(path)
    rows = _read_rows(path, text)
    if not rows:
        raise TableError(f"{path} is empty: it needs a header row and data rows")
    header = [h.strip() for h in rows[0][1]]
    _check_header(path, header, target)
    data = [(line, r) for line, r in rows[1:] if any(cell.strip() for cell in r)]
    if not data:
        raise TableError(f"{path} has a header but no data rows")
    values = np.empty((len(data), len(header)))
    limit = float(np.finfo(dtype).max)
    for i, (line, row) in enumerate(data):
        if len(row) != len(header):
            raise TableError(f"{path} line {line} has {len(row)} cells, the header has {len(header)}")
        for j, cell in enumerate(row):
            values[i, j] = _parse_number(path, line, header[j], cell, limit)
    t = header.index(target)
    features = [h for j, h in enumerate(header) if j != t]
    return np.delete(values, t, axis=1), values[:, t], features
