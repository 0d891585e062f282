"""The preprocessing a user would otherwise write for a table: each column given a role, then a
scikit-learn ``ColumnTransformer`` fitted on the training split only, saved as JSON.

Roles, decided on the training frame (the thresholds are the constants below):

- **numeric** (floats; integers that are not categorical or identifiers): the median fills
  missing cells, then ``StandardScaler``.
- **categorical** (text, booleans, pandas ``category`` columns, and integer columns of few
  values: at most :data:`CATEGORICAL_MAX_VALUES` distinct values and at most
  :data:`CATEGORICAL_MAX_SHARE` of the rows): the most frequent value fills missing cells, then
  ``OneHotEncoder(handle_unknown="ignore")``: a category not seen in training is all zeros.
  Values are compared as text (``1``, ``1.0`` and ``"1"`` are one category; ``True``/``False``).
- **datetime** (datetime64 columns, and text columns whose non-missing cells parse as dates in
  at least :data:`DATE_SHARE` of the rows): numeric features ``year``, ``month``, ``day``,
  ``weekday`` (0 = Monday), ``days`` (days since 1970-01-01, fractional) and ``hour`` (with
  minutes as its fraction; only when the times vary), each then numeric.
- **identifier** (a distinct value in at least :data:`IDENTIFIER_SHARE` of at least
  :data:`IDENTIFIER_MIN_ROWS` rows: text, or integers whose column name says identifier, such as
  ``id``, ``user_id``, ``userId``, ``ID``, ``key``, ``index``, ``row``; other integers of distinct
  values may be measurements, a year or a price, and stay numeric):
  dropped with a notice, their names kept in :attr:`Preprocessor.identifier_columns` for
  predictions' output.
- **dropped**: constant or empty columns (with a notice), and columns left out by
  ``features=`` or ``drop=``.
- **pixel** (the columns named in ``pixels=``: a flattened image, for a CNN): every one kept,
  constant or not, in table order and first among the features; a missing cell is 0; all of
  them scaled by one mean and one standard deviation, taken over every pixel of the training
  split, so that the image keeps its contrasts (standardizing each pixel on its own would blow
  up the rarely inked ones at the border).

:meth:`Preprocessor.to_dict` writes every fitted number (medians, means, scales, categories,
date handling) as JSON-ready values, no pickle; :meth:`Preprocessor.from_dict` reads them back
and transforms with NumPy to the same float32 numbers as the fitted ``ColumnTransformer``.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np

#: An integer column is categorical with at most this many distinct values...
CATEGORICAL_MAX_VALUES = 10
#: ... that are at most this share of its rows.
CATEGORICAL_MAX_SHARE = 0.05
#: A column of text or integers is an identifier when at least this share of its (non-missing)
#: cells are distinct...
IDENTIFIER_SHARE = 0.95
#: ... in at least this many rows.
IDENTIFIER_MIN_ROWS = 10
#: A text column is dates when at least this share of its non-missing cells parse as dates.
DATE_SHARE = 0.95
DATE_PARTS = ("year", "month", "day", "weekday", "days")
FORMAT = "saddlepoint.preprocessor"
VERSION = 1
_ID_NAME = re.compile(
    r"(^|[^a-z])(id|ids|key|uuid|guid|index|idx|row|rownum)($|[^a-z])|[a-z]Id$|ID$|^#$", re.IGNORECASE
)
_NANOSECONDS_PER_DAY = 86_400 * 10**9


def _text(value) -> str:
    """A categorical value as text, the same for 1, 1.0, np.int64(1) and "1"."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value).strip()


def _as_text(column) -> np.ndarray:
    """A column's values as an object array of text, missing cells as NaN."""
    values = column.to_numpy(dtype=object, na_value=np.nan)
    present = ~_missing(column)
    out = np.full(len(values), np.nan, dtype=object)
    out[present] = [_text(v) for v in values[present]]
    return out


def _missing(column) -> np.ndarray:
    return column.isna().to_numpy(dtype=bool)


def _kind_of(column) -> str:
    """What a column holds: "bool", "int", "float", "datetime", "category" or "text"."""
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        present = column.dropna().to_numpy()
        return "int" if len(present) and np.all(present == np.round(present)) else "float"
    present = column.dropna()
    if len(present) and present.map(type).isin([bool, np.bool_]).all():
        return "bool"
    return "text"


def _dtype_name(column) -> str:
    kind = _kind_of(column)
    return "text" if kind == "text" else str(column.dtype)


def _parse_dates(column, date_format: str):
    """A column as datetime64[ns] without a time zone (UTC), unparseable cells NaT."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        dates = column
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    else:
        text = pd.Series(_as_text(column), index=column.index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dates = pd.to_datetime(text, errors="coerce", format=date_format, utc=True).dt.tz_localize(None)
    return dates.astype("datetime64[ns]")


def _date_format(column) -> str | None:
    """ "ISO8601" or "mixed" when the text column holds dates (:data:`DATE_SHARE` of its cells
    parse and they are not plain numbers), else None."""
    import pandas as pd

    present = column.dropna()
    if present.empty or pd.to_numeric(present, errors="coerce").notna().mean() > 0.5:
        return None
    sample = present.iloc[:1000]
    text = sample.map(_text)
    for date_format in ("ISO8601", "mixed"):
        if date_format == "mixed" and (not text.str.contains(r"\d").all() or text.str.len().min() < 6):
            return None  # dateutil reads "Jan" or "10-12" as dates; dates have digits and length
        parsed = _parse_dates(sample, date_format)
        if parsed.notna().mean() >= DATE_SHARE:
            return date_format
    return None


def _date_features(dates, parts) -> dict[str, np.ndarray]:
    """``part -> float64 values`` (NaN where the date is missing)."""
    missing = dates.isna().to_numpy()
    out = {}
    for part in parts:
        if part == "days":
            values = dates.to_numpy().astype("datetime64[ns]").astype(np.int64) / _NANOSECONDS_PER_DAY
        elif part == "hour":
            values = (dates.dt.hour + dates.dt.minute / 60).to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            attribute = "day_of_week" if part == "weekday" else part
            values = getattr(dates.dt, attribute).to_numpy(dtype=np.float64, na_value=np.nan)
        values = np.array(values, dtype=np.float64)
        values[missing] = np.nan
        out[part] = values
    return out


def _numbers(column, name: str) -> np.ndarray:
    """A numeric column as float64 (booleans as 0/1); a ValueError names a cell that is not a
    number."""
    import pandas as pd

    try:
        return pd.to_numeric(column.astype(object).where(column.notna(), np.nan)).to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    except (TypeError, ValueError):
        coerced = pd.to_numeric(column, errors="coerce")
        bad = coerced.isna() & column.notna()
        row = bad.to_numpy().argmax()
        raise ValueError(
            f"column {name!r}, {column.index.name or 'row'} {column.index[row]}: {column.iloc[row]!r} is not a number "
            "(the column held numbers in training)"
        ) from None


class Preprocessor:
    """Each column of a table given a role and turned into model features (see the module's
    documentation for the rules).

    ``features`` keeps only those columns (besides the target); ``drop`` removes columns;
    ``numeric`` names columns known to be measurements, numeric whatever their values (a bundled
    data set's features: its pixels of few intensities are not categories).
    After :meth:`fit` (on the training split): :attr:`feature_names` (the output columns),
    :attr:`report` (one row per input column: name, dtype, role, action), :attr:`notices`
    (one line per column dropped without being asked), :attr:`identifier_columns`,
    :attr:`columns` (the input columns :meth:`transform` needs).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0], "city": ["a", "b", "a", "b"]})
    >>> preprocessor = sp.data.Preprocessor().fit(table)
    >>> preprocessor.feature_names
    ['age', 'city=a', 'city=b']
    >>> preprocessor.transform(table).shape
    (4, 3)
    """

    def __init__(
        self,
        features: list[str] | None = None,
        drop: list[str] | None = None,
        numeric: list[str] | None = None,
        pixels: list[str] | None = None,
    ):
        self.features = None if features is None else [str(f) for f in features]
        self.drop = [str(d) for d in (drop or [])]
        # Columns known to be measurements (a bundled data set's pixels): numeric whatever
        # their values, never categorical, an identifier or dates.
        self.numeric = [str(n) for n in (numeric or [])]
        self.pixels = [str(n) for n in (pixels or [])]
        self.target: str | None = None
        self.report: list[dict] = []
        self.notices: list[str] = []
        self.identifier_columns: list[str] = []
        self.feature_names: list[str] = []
        self._numeric: list[dict] = []  # {"name", "column", "part", "median", "mean", "scale"}
        self._categorical: list[dict] = []  # {"name", "most_frequent", "categories"}
        self._datetime: list[dict] = []  # {"name", "format", "parts"}
        self._pixels: dict = {"names": [], "mean": 0.0, "scale": 1.0}
        self._transformer: Any = None
        self._fitted = False

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, frame, target: str | None = None) -> Preprocessor:
        """Decide each column's role on ``frame`` (the training split; ``target``, when given,
        is left out) and fit the ``ColumnTransformer``. A ValueError names unknown ``features``
        or ``drop`` columns, and says so when no feature column is left."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        self.target = target
        names = [str(c) for c in frame.columns]
        frame = frame.set_axis(names, axis=1)
        candidates = [n for n in names if n != target]
        self._check_names(candidates, target)
        self.report, self.notices, self.identifier_columns = [], [], []
        self._numeric, self._categorical, self._datetime = [], [], []
        self._pixels = {"names": [], "mean": 0.0, "scale": 1.0}
        for name in candidates:
            self._decide(name, frame[name])
        if self._pixels["names"]:
            values = np.nan_to_num(self._pixel_values(frame), nan=0.0)  # as transform sees them
            scale = float(values.std()) if values.size else 0.0
            self._pixels.update(mean=float(values.mean()) if values.size else 0.0, scale=scale or 1.0)
        if not self._numeric and not self._categorical and not self._pixels["names"]:
            roles = ", ".join(f"{r['name']!r}: {r['role']}" for r in self.report)
            raise ValueError(
                "no feature column is left: every column is the target, an identifier, constant, "
                f"empty or dropped ({roles})"
            )
        prepared = self._prepare(frame)
        numeric = [c["name"] for c in self._numeric]
        categorical = [c["name"] for c in self._categorical]
        steps = []
        if numeric:
            impute = SimpleImputer(strategy="median")
            steps.append(("numeric", Pipeline([("impute", impute), ("scale", StandardScaler())]), numeric))
        if categorical:
            impute = SimpleImputer(strategy="most_frequent")
            encode = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
            steps.append(("categorical", Pipeline([("impute", impute), ("one_hot", encode)]), categorical))
        self._transformer = (
            ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0) if steps else None
        )
        if self._transformer is not None:
            self._transformer.fit(prepared)
        if numeric and self._transformer is not None:
            pipeline = self._transformer.named_transformers_["numeric"]
            medians = pipeline.named_steps["impute"].statistics_
            scaler = pipeline.named_steps["scale"]
            for entry, median, mean, scale in zip(self._numeric, medians, scaler.mean_, scaler.scale_):
                entry.update(median=float(median), mean=float(mean), scale=float(scale))
        if categorical and self._transformer is not None:
            pipeline = self._transformer.named_transformers_["categorical"]
            frequent = pipeline.named_steps["impute"].statistics_
            categories = pipeline.named_steps["one_hot"].categories_
            for entry, most, values in zip(self._categorical, frequent, categories):
                entry.update(most_frequent=str(most), categories=[str(v) for v in values])
        self._finish_report()
        self._fitted = True
        return self

    def _check_names(self, candidates: list[str], target: str | None) -> None:
        for option, chosen in (("features", self.features), ("drop", self.drop)):
            unknown = [n for n in chosen or [] if n not in candidates and n != target]
            if unknown:
                listed = ", ".join(repr(n) for n in candidates[:30]) + (
                    ", ..." if len(candidates) > 30 else ""
                )
                raise ValueError(
                    f"{option}: no column {', '.join(map(repr, unknown))}; the columns are [{listed}]"
                )
            if target is not None and target in (chosen or []) and option == "drop":
                raise ValueError(f"drop: {target!r} is the target")

    def _decide(self, name: str, column) -> None:
        kind = _kind_of(column)
        row = {"name": name, "dtype": _dtype_name(column), "role": "", "action": ""}
        self.report.append(row)
        present = column.dropna()
        distinct = present.map(_text).nunique() if kind in ("text", "category", "bool") else present.nunique()
        if name in self.drop:
            row.update(role="dropped", action="dropped (drop)")
            return
        if name in self.pixels and (self.features is None or name in self.features):
            self._pixels["names"].append(name)
            row.update(role="pixel")
            return
        if present.empty:
            self._drop(row, "empty: every cell is missing")
            return
        if distinct < 2:
            self._drop(row, f"constant ({_text(present.iloc[0])})")
            return
        if name in self.numeric and (self.features is None or name in self.features):
            self._numeric.append({"name": name, "column": name, "part": None})
            row.update(role="numeric")
            return
        date_format = "datetime" if kind == "datetime" else _date_format(column) if kind == "text" else None
        if date_format is None and self._is_identifier(name, kind, present, distinct):
            row.update(
                role="identifier",
                action=f"dropped: an identifier ({distinct} distinct values in {len(present)} rows)",
            )
            self.identifier_columns.append(name)
            self.notices.append(
                f"column {name!r} dropped: an identifier ({distinct} distinct values in {len(present)} "
                "rows); predictions keep it"
            )
            return
        if self.features is not None and name not in self.features:
            row.update(role="dropped", action="dropped (not among features)")
            return
        if date_format is not None:
            dates = _parse_dates(column, date_format)
            times = dates.dropna()
            parts = list(DATE_PARTS) + (["hour"] if (times.dt.hour + times.dt.minute).nunique() > 1 else [])
            self._datetime.append({"name": name, "format": date_format, "parts": parts})
            for part in parts:
                self._numeric.append({"name": f"{name}:{part}", "column": name, "part": part})
            row.update(role="datetime")
            return
        few = distinct <= CATEGORICAL_MAX_VALUES and distinct <= CATEGORICAL_MAX_SHARE * len(present)
        if kind in ("text", "category", "bool") or (kind == "int" and few):
            self._categorical.append({"name": name})
            row.update(role="categorical")
            return
        self._numeric.append({"name": name, "column": name, "part": None})
        row.update(role="numeric")

    def _drop(self, row: dict, why: str) -> None:
        row.update(role="dropped", action=f"dropped: {why}")
        self.notices.append(f"column {row['name']!r} dropped: {why}")

    @staticmethod
    def _is_identifier(name: str, kind: str, present, distinct: int) -> bool:
        n = len(present)
        if n < IDENTIFIER_MIN_ROWS or distinct < IDENTIFIER_SHARE * n or kind not in ("text", "int"):
            return False
        if kind == "text":
            return True
        # Integers of distinct values can be measurements (a year per row, a price): only their
        # name makes them identifiers.
        return bool(_ID_NAME.search(name))

    def _finish_report(self) -> None:
        """The report's actions for the columns that make features, and :attr:`feature_names`."""
        numeric = {c["name"]: c for c in self._numeric}
        names = self._pixels["names"] + [c["name"] for c in self._numeric]
        for entry in self._categorical:
            names += [f"{entry['name']}={v}" for v in entry["categories"]]
        self.feature_names = names
        by_name = {r["name"]: r for r in self.report}
        for entry in self._categorical:
            count = len(entry["categories"])
            by_name[entry["name"]]["action"] = (
                f"one-hot, {count} categories (missing -> {entry['most_frequent']!r})"
            )
        for entry in self._datetime:
            by_name[entry["name"]]["action"] = "date -> " + ", ".join(entry["parts"]) + ", standardized"
        for name, entry in numeric.items():
            if entry["part"] is None:
                by_name[name]["action"] = f"standardized (missing -> median {entry['median']:.6g})"
        mean, scale = self._pixels["mean"], self._pixels["scale"]
        for name in self._pixels["names"]:
            by_name[name]["action"] = f"pixel: (x - {mean:.6g}) / {scale:.6g} (missing -> 0)"

    # -- transforming ----------------------------------------------------------------------

    @property
    def columns(self) -> list[str]:
        """The input columns :meth:`transform` reads."""
        return [
            r["name"] for r in self.report if r["role"] in ("numeric", "categorical", "datetime", "pixel")
        ]

    def _prepare(self, frame):
        """The frame the ``ColumnTransformer`` takes: numeric columns and date parts as float64,
        categorical columns as text (NaN where missing)."""
        import pandas as pd

        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
        missing = [n for n in self.columns if n not in frame.columns]
        if missing:
            have = ", ".join(repr(str(c)) for c in list(frame.columns)[:30])
            raise ValueError(
                f"the table has no column {', '.join(map(repr, missing))}, which the model needs; "
                f"its columns are [{have}]"
            )
        data: dict[str, Any] = {}
        dates = {}
        for entry in self._datetime:
            parsed = _parse_dates(frame[entry["name"]], entry["format"])
            dates[entry["name"]] = _date_features(parsed, entry["parts"])
        for entry in self._numeric:
            if entry["part"] is None:
                data[entry["name"]] = _numbers(frame[entry["column"]], entry["column"])
            else:
                data[entry["name"]] = dates[entry["column"]][entry["part"]]
        for entry in self._categorical:
            data[entry["name"]] = _as_text(frame[entry["name"]])
        return pd.DataFrame(data, index=range(len(frame)))

    def transform(self, frame) -> np.ndarray:
        """The features of ``frame`` (rows in order) as float32, C-contiguous, columns
        :attr:`feature_names`. A ValueError names the columns the model needs that ``frame``
        lacks, or a cell of a numeric column that is not a number."""
        if not self._fitted:
            raise RuntimeError("Preprocessor.transform called before fit")
        prepared = self._prepare(frame)
        if self._transformer is not None:
            out = self._transformer.transform(prepared)
        else:
            out = self._transform_numpy(prepared)
        if self._pixels["names"]:
            pixels = (
                np.nan_to_num(self._pixel_values(frame), nan=0.0) - self._pixels["mean"]
            ) / self._pixels["scale"]
            out = np.hstack([pixels, out])
        return np.ascontiguousarray(out, dtype=np.float32)

    def _pixel_values(self, frame) -> np.ndarray:
        """The pixel columns of ``frame`` as float64 (NaN where missing)."""
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
        names = self._pixels["names"]
        if not names:
            return np.empty((len(frame), 0))
        return np.column_stack([_numbers(frame[name], name) for name in names])

    def _transform_numpy(self, prepared) -> np.ndarray:
        """What the fitted ``ColumnTransformer`` computes, from the saved numbers."""
        blocks = []
        if self._numeric:
            X = prepared[[c["name"] for c in self._numeric]].to_numpy(dtype=np.float64, copy=True)
            medians = np.array([c["median"] for c in self._numeric])
            X = np.where(np.isnan(X), medians, X)
            X -= np.array([c["mean"] for c in self._numeric])
            X /= np.array([c["scale"] for c in self._numeric])
            blocks.append(X)
        for entry in self._categorical:
            values = prepared[entry["name"]].to_numpy(dtype=object)
            values = np.where(prepared[entry["name"]].isna().to_numpy(), entry["most_frequent"], values)
            categories = np.array(entry["categories"], dtype=object)
            blocks.append((values[:, None] == categories[None, :]).astype(np.float64))
        return np.hstack(blocks) if blocks else np.empty((len(prepared), 0))

    def fit_transform(self, frame, target: str | None = None) -> np.ndarray:
        return self.fit(frame, target).transform(frame)

    # -- saving ----------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Everything :meth:`from_dict` needs, as JSON-ready values (no pickle)."""
        if not self._fitted:
            raise RuntimeError("Preprocessor.to_dict called before fit")
        return {
            "format": FORMAT,
            "version": VERSION,
            "target": self.target,
            "features": self.features,
            "drop": self.drop,
            "report": [dict(r) for r in self.report],
            "notices": list(self.notices),
            "identifier_columns": list(self.identifier_columns),
            "feature_names": list(self.feature_names),
            "numeric": [dict(c) for c in self._numeric],
            "categorical": [dict(c) for c in self._categorical],
            "datetime": [dict(c) for c in self._datetime],
            "pixels": dict(self._pixels),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessor:
        """The fitted preprocessing :meth:`to_dict` wrote; its :meth:`transform` gives the same
        numbers as the fitted one. A ValueError when ``data`` is not one."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(
                f"not a saddlepoint preprocessor (format {data.get('format') if isinstance(data, dict) else None!r})"
            )
        if data.get("version") != VERSION:
            raise ValueError(f"preprocessor version {data.get('version')!r} is not {VERSION}")
        try:
            self = cls(data["features"], data["drop"])
            self.target = data["target"]
            self.report = [dict(r) for r in data["report"]]
            self.notices = list(data["notices"])
            self.identifier_columns = list(data["identifier_columns"])
            self.feature_names = list(data["feature_names"])
            self._numeric = [
                {**c, "median": float(c["median"]), "mean": float(c["mean"]), "scale": float(c["scale"])}
                for c in data["numeric"]
            ]
            self._categorical = [
                {
                    "name": c["name"],
                    "most_frequent": str(c["most_frequent"]),
                    "categories": [str(v) for v in c["categories"]],
                }
                for c in data["categorical"]
            ]
            self._datetime = [dict(c) for c in data["datetime"]]
            pixels = data.get("pixels", {"names": [], "mean": 0.0, "scale": 1.0})  # absent before CNNs
            self._pixels = {
                "names": [str(n) for n in pixels["names"]],
                "mean": float(pixels["mean"]),
                "scale": float(pixels["scale"]),
            }
            self.pixels = list(self._pixels["names"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"a preprocessor's {e} is missing or malformed") from None
        width = (
            len(self._pixels["names"])
            + len(self._numeric)
            + sum(len(c["categories"]) for c in self._categorical)
        )
        if width != len(self.feature_names):
            raise ValueError(f"a preprocessor of {width} features names {len(self.feature_names)}")
        self._fitted = True
        return self
