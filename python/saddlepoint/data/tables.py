"""Tables: scikit-learn's bundled data sets, and the files a user has (CSV, TSV, text, compressed
or not, and Parquet) read by pandas and pyarrow into a DataFrame.

:func:`read_table` is the one reader. What it does besides calling pandas: it detects the
delimiter, decodes UTF-8 itself (so that a bad byte names its line), checks the header and the
rows' lengths with the ``csv`` module (pandas pads short rows with missing values without a
word), and refuses cells that would poison training (infinities, numbers beyond float32, a
stray word in a column of numbers). Every refusal is a :class:`TableError`: one line naming the
file, and the line and column where there is one.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import zipfile
from pathlib import Path

import numpy as np

BUNDLED = {
    "digits": ("load_digits", "classification"),
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}
"""scikit-learn's bundled data sets (no download): name -> (loader name, task)."""

#: The delimiters :func:`read_table` chooses among (``csv.Sniffer`` on the head of the file).
DELIMITERS = ",;\t| "
#: The cells read as missing: pandas' defaults ('', NA, N/A, NaN, nan, null, NULL, None, #N/A,
#: ...) and these (the UCI repository's "?").
EXTRA_MISSING = ["?"]
#: Compressions read by suffix, after which the name's own suffix tells the format.
COMPRESSIONS = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}
PARQUET = (".parquet", ".pq")
#: The largest magnitude a number may have: float32's, the network's numbers.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: A string column whose cells are numbers but for a few (at most this share) holds typos,
#: not categories: the first of them is refused.
STRAY_TEXT_SHARE = 0.1
_HEAD = 64 * 1024


def load_bundled(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``(X, y, task)`` for one of scikit-learn's bundled data sets (see :data:`BUNDLED`).

    Examples
    --------
    >>> X, y, task = sp.data.load_bundled("iris")
    >>> X.shape, y.shape, task
    ((150, 4), (150,), 'classification')
    """
    if name not in BUNDLED:
        raise ValueError(f"data must be one of {sorted(BUNDLED)}, got {name!r}")
    import sklearn.datasets

    loader, task = BUNDLED[name]
    X, y = getattr(sklearn.datasets, loader)(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y), task


def load_bundled_frame(name: str):
    """One of scikit-learn's bundled data sets (see :data:`BUNDLED`) as a pandas DataFrame: its
    feature columns by name, and the target column named ``"target"``."""
    if name not in BUNDLED:
        raise ValueError(f"data must be one of {sorted(BUNDLED)}, got {name!r}")
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, BUNDLED[name][0])(as_frame=True)
    frame = bunch.frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    return frame


class TableError(ValueError):
    """A table that cannot be used: the message is one line naming the file, and the line and
    column where there is one."""


def _short(text: str, limit: int = 40) -> str:
    """``repr(text)``, cut to about ``limit`` characters (a cell can be megabytes long)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] in COMPRESSIONS or suffixes[-1:] == [".zip"]:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    return "Parquet" if last in PARQUET else "TSV" if last == ".tsv" else "CSV"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when its name ends in .gz, .bz2, .xz or .zip."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise TableError(f"{path} is a directory, not a {_kind(path)} file") from None
    except FileNotFoundError:
        raise TableError(f"{path} does not exist") from None
    except OSError as e:
        raise TableError(f"{path} cannot be read: {e.strerror or e}") from None
    suffix = path.suffix.lower()
    try:
        if suffix in COMPRESSIONS:
            return COMPRESSIONS[suffix](data)
        if suffix == ".zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise TableError(f"{path} holds {len(names)} files; a .zip table must hold exactly one")
                return archive.read(names[0])
    except (OSError, EOFError, ValueError, lzma.LZMAError, zipfile.BadZipFile) as e:
        if isinstance(e, TableError):
            raise
        raise TableError(f"{path} is not a valid {suffix[1:]} file: {_one_line(e)}") from None
    return data


def _decode(path: Path, data: bytes) -> str:
    """The text, decoded as UTF-8 without a byte-order mark."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TableError(
            f"{path} line {line}: byte 0x{data[e.start]:02x} is not UTF-8 text; save the table as UTF-8"
        ) from None


def _delimiter(path: Path, text: str) -> str:
    """The delimiter among :data:`DELIMITERS` that ``csv.Sniffer`` finds in the head of the
    text; a tab for a .tsv file and a comma otherwise when it finds none."""
    head = text[:_HEAD]
    if len(text) > _HEAD:
        head = head[: head.rfind("\n") + 1] or head
    default = "\t" if _kind(path) == "TSV" else ","
    try:
        found = csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # Columns aligned with runs of spaces: every line splits into the same number of fields.
        lines = [line for line in head.splitlines() if line.strip()]
        widths = {len(line.split()) for line in lines}
        if not any(d in head for d in DELIMITERS[:-1]) and len(widths) == 1 and widths.pop() > 1:
            return " "
        return default
    header = next((line for line in head.splitlines() if line.strip()), "")
    # A space wins only when nothing else separates the header's names ("first name,age").
    if found == " " and any(d in header for d in DELIMITERS[:-1]):
        return next(d for d in DELIMITERS[:-1] if d in header)
    return found


def _records(path: Path, text: str, delimiter: str) -> tuple[list[str], int, list[int]]:
    """``(header, header line, data lines)``: the header's names (stripped), the line it is on
    and the line where each data row starts (blank lines skipped, as pandas does), every row
    checked to have the header's length."""
    if delimiter == " ":
        lines = [(i + 1, line.split()) for i, line in enumerate(text.splitlines())]
        rows = [(line, cells) for line, cells in lines if cells]
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
        rows = []
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                if "field larger than field limit" in str(e):
                    raise TableError(
                        f"{path} line {line}: a cell is longer than {csv.field_size_limit()} characters"
                    ) from None
                raise TableError(f"{path} line {line}: {_one_line(e)}") from None
            if len(row) > 1 or (row and row[0].strip()):
                rows.append((line, row))
    if not rows:
        raise TableError(f"{path} is empty: it needs a header row and data rows")
    header_line, header = rows[0][0], [h.strip() for h in rows[0][1]]
    for j, name in enumerate(header):
        if name == "":
            raise TableError(f"{path} line {header_line}, column {j + 1}: the header cell is empty")
        if name in header[:j]:
            raise TableError(
                f"{path} line {header_line}: the column name {_short(name)} appears twice "
                f"(columns {header.index(name) + 1} and {j + 1})"
            )
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise TableError(f"{path} line {line} has {len(row)} cells, the header has {len(header)}")
    return header, header_line, [line for line, _ in rows[1:]]


def _cell(text: str, delimiter: str, line: int, column: int) -> str:
    """The raw text of the cell in the row starting at ``line`` (for messages)."""
    if delimiter == " ":
        return text.splitlines()[line - 1].split()[column]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    for row in reader:
        if reader.line_num >= line and (len(row) > 1 or (row and row[0].strip())):
            return row[column] if column < len(row) else ""
    return ""


def _decimal_comma(head: str) -> bool:
    """Whether a ;-separated head writes decimals with a comma (1,5) and never with a point."""
    return bool(re.search(r"\d,\d", head)) and not re.search(r"\d\.\d", head)


def _read_text_table(path: Path, data: bytes):
    import pandas as pd

    text = _decode(path, data)
    if not text.strip():
        raise TableError(f"{path} is empty: it needs a header row and data rows")
    delimiter = _delimiter(path, text)
    header, header_line, lines = _records(path, text, delimiter)
    if not lines:
        raise TableError(f"{path} has a header but no data rows")
    options: dict = {"sep": r"\s+"} if delimiter == " " else {"sep": delimiter, "skipinitialspace": True}
    options["na_values"] = EXTRA_MISSING
    if delimiter == ";" and _decimal_comma(text[:_HEAD]):
        options["decimal"] = ","
    try:
        frame = pd.read_csv(io.StringIO(text, newline=""), engine="c", **options)
    except (ValueError, pd.errors.ParserError) as e:  # the csv pass above catches what it can
        raise TableError(f"{path}: {_one_line(e)}") from None
    frame = _plain_dtypes(frame)
    if len(frame.columns) == len(header):
        frame.columns = header
    if len(frame) == len(lines):
        frame.index = pd.Index(lines, name="line")
    else:
        frame.index = pd.RangeIndex(header_line + 1, header_line + 1 + len(frame), name="line")

    def cell(row: int, column: int) -> str:
        return _cell(text, delimiter, int(frame.index[row]), column)

    if frame.dropna(how="all").empty:
        raise TableError(f"{path} has a header but no data rows")
    return _check_cells(path, frame, cell)


def _plain_dtypes(frame):
    """NumPy dtypes where pandas' nullable ones came (float64 with NaN for a column of integers
    with missing cells, object strings with NaN), so that scikit-learn takes every column."""
    import pandas as pd

    columns = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column.dtype):
            column = (
                column.astype(object).where(column.notna(), np.nan) if column.hasnans else column.astype(bool)
            )
        elif pd.api.types.is_integer_dtype(column.dtype) or pd.api.types.is_float_dtype(column.dtype):
            kind = np.dtype(
                column.dtype.numpy_dtype if hasattr(column.dtype, "numpy_dtype") else column.dtype
            )
            column = column.astype("float64") if column.hasnans else column.astype(kind)
        elif pd.api.types.is_string_dtype(column.dtype):
            column = column.astype(object).where(column.notna(), np.nan)
        columns[name] = column
    return pd.DataFrame(columns, index=frame.index)


def _read_parquet(path: Path, data: bytes):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise TableError(
            f"{path}: reading Parquet files needs pyarrow; install saddlepoint[parquet] (pip install pyarrow)"
        ) from None
    import pandas as pd

    try:
        frame = pq.read_table(pa.BufferReader(data)).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as e:
        raise TableError(f"{path} is not a readable Parquet file: {_one_line(e)}") from None
    if isinstance(frame.index, pd.MultiIndex) or not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    names = [str(c) for c in frame.columns]
    for j, name in enumerate(names):
        if name.strip() == "":
            raise TableError(f"{path} column {j + 1}: the column name is empty")
        if name in names[:j]:
            raise TableError(
                f"{path}: the column name {_short(name)} appears twice (columns {names.index(name) + 1} and {j + 1})"
            )
    frame.columns = names
    if frame.empty:
        raise TableError(f"{path} has no data rows")
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    frame = _plain_dtypes(frame)
    return _check_cells(path, frame, lambda row, column: str(frame.iat[row, column]))


def _check_cells(path: Path, frame, cell):
    """``frame``, its numbers checked (finite, within float32's range) and a string column that
    is all numbers but for a stray word or two refused at that word; ``cell(row, column)`` gives
    a cell's text for the message. A string column whose cells are all numbers (ones pandas
    left as text, such as integers of 400 digits) becomes float64 and is checked as numbers."""
    import pandas as pd

    for j, name in enumerate(frame.columns):
        column = frame[name]
        if column.dtype == object and not _all_bool(column):
            numbers = pd.to_numeric(column, errors="coerce")
            present = column.notna().to_numpy()
            words = present & numbers.isna().to_numpy()
            if words.any() and words.sum() <= STRAY_TEXT_SHARE * present.sum():
                numbers = numbers.copy()
                for k in np.flatnonzero(words):  # digits beyond pandas' parser, such as 400 nines
                    numbers.iloc[k] = _python_float(column.iloc[k])
                words = present & numbers.isna().to_numpy()
            if words.any() and words.sum() <= STRAY_TEXT_SHARE * present.sum():
                i = int(np.argmax(words))
                raise TableError(
                    f"{_where(path, frame, i, name)}: {_short(cell(i, j))} is not a number, unlike "
                    f"{present.sum() - words.sum()} of the column's {present.sum()} cells; correct it "
                    f"or leave it empty (a missing value)"
                )
            if not words.any() and present.any():
                column = frame[name] = numbers.astype("float64")
        if pd.api.types.is_float_dtype(column.dtype):
            values = column.to_numpy()
            bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > FLOAT32_MAX)
            if bad.any():
                i = int(np.argmax(bad))
                what = (
                    "is not a finite number"
                    if np.isinf(values[i])
                    else (f"is beyond the range of the model's numbers (±{FLOAT32_MAX:.4g})")
                )
                raise TableError(f"{_where(path, frame, i, name)}: {_short(cell(i, j).strip())} {what}")
    return frame


def _python_float(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return np.nan


def _all_bool(column) -> bool:
    return bool(column.dropna().map(type).isin([bool, np.bool_]).all())


def _where(path: Path, frame, row: int, column: str) -> str:
    return f"{path} {frame.index.name} {frame.index[row]}, column {_short(column)}"


def read_table(path, target: str | None = None):
    """The table at ``path`` as a pandas DataFrame, read by pandas (CSV, TSV, text) or pyarrow
    (Parquet).

    - Text tables (``.csv``, ``.tsv``, ``.txt``, any other name): UTF-8 with or without a
      byte-order mark; the delimiter found by ``csv.Sniffer`` among ``, ; tab | space`` (a tab
      for ``.tsv``, a comma otherwise when it finds none); quoted fields; a ``;`` table whose
      decimals are written 1,5 is read with decimal commas; blank lines skipped; pandas' missing
      markers ('', NA, N/A, NaN, nan, null, NULL, None, #N/A, ...) and "?" become NaN. The index holds
      the file line where each row starts (named ``"line"``), for messages.
    - ``.gz``, ``.bz2``, ``.xz`` and ``.zip`` (one file) are decompressed first (``t.csv.gz``).
    - ``.parquet`` and ``.pq`` are read by pyarrow (``pip install saddlepoint[parquet]``); the
      index holds the row number from 1 (named ``"row"``).

    Columns come as float64 (integers with missing cells too), int64, bool, datetime64 (from
    Parquet) or object strings with NaN for missing cells. With ``target``, the column must
    exist. Every problem raises :class:`TableError` (a ValueError), one line naming the file
    and, where there is one, the line and column: no such file, a directory, a compressed file
    that does not decompress, bytes that are not UTF-8, an empty file, an empty or repeated
    column name, rows of the wrong length, a header without data rows, an infinite number or one
    beyond float32's range, a word among the numbers of a column (at most 10% of its cells), a
    missing ``target`` column (the message lists the columns).

    Examples
    --------
    >>> lines = ["age,city,label", "20,Paris,yes", "31,,no"]
    >>> with open("people.csv", "w") as file:
    ...     _ = file.write(chr(10).join(lines))
    >>> table = sp.data.read_table("people.csv", target="label")
    >>> table.index.tolist(), table["city"].isna().tolist()  # the file's lines; a missing cell
    ([2, 3], [False, True])
    """
    path = Path(path)
    data = _read_bytes(path)
    frame = _read_parquet(path, data) if _kind(path) == "Parquet" else _read_text_table(path, data)
    if target is not None:
        check_column(path, frame, target)
    return frame


def check_column(path, frame, name: str) -> None:
    """A :class:`TableError` listing the columns when ``frame`` (read from ``path``) has no
    column ``name``."""
    if name not in frame.columns:
        header = [str(c) for c in frame.columns]
        names = ", ".join(_short(h) for h in header[:20]) + (", ..." if len(header) > 20 else "")
        raise TableError(f"{path} has no column {_short(name)}; its columns are [{names}]")
