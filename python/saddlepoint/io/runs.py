"""A run folder that is a model: what ``saddlepoint train`` writes, read back as a :class:`Run`
whose :meth:`Run.predict` applies the same preprocessing to new rows.

The folder holds, besides the command's own files (config, history, plots):

- ``preprocessing.json``: the fitted :class:`~saddlepoint.data.preprocess.Preprocessor`
  (columns, dtypes, roles, medians, means, scales, categories; plain JSON, no pickle), the
  target's name and encoding (class labels, or the mean and scale of a regression target)
  and the task;
- ``model.safetensors``: the model's config and weights (:func:`~saddlepoint.save_model`);
- ``metrics.json``: the final scores;
- ``columns.json`` and ``columns.csv``: what was done to each input column.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.preprocess import Preprocessor
from ..data.tables import TableError, read_table
from ..data.targets import TargetEncoder
from ..losses import softmax
from ..nn.module import predict
from .files import atomic_write, json_ready
from .models import load_model, save_model

FORMAT = "saddlepoint-run"
VERSION = 1
PREPROCESSING = "preprocessing.json"
MODEL = "model.safetensors"
METRICS = "metrics.json"
CONFIG = "config.json"
COLUMNS = "columns.json"
COLUMNS_CSV = "columns.csv"
#: How predictions are written as CSV: 7 significant digits, what the float32 model resolves.
CSV_FLOAT_FORMAT = "%.7g"
#: The columns of the column table, in order.
REPORT_FIELDS = ("name", "dtype", "role", "action")


def probability_column(label) -> str:
    """The name of the column holding the probability of class ``label``: ``P(label)``."""
    return f"P({label})"


def _write_json(path: Path, value) -> None:
    atomic_write(path, (json.dumps(json_ready(value), indent=2, allow_nan=False) + "\n").encode())


def write_columns(folder, report: list[dict]) -> None:
    """``columns.json`` and ``columns.csv``: the column table (one row per input column)."""
    folder = Path(folder)
    _write_json(folder / COLUMNS, report)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=REPORT_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(report)
    atomic_write(folder / COLUMNS_CSV, text.getvalue().encode())


def save_run(
    folder, *, model, preprocessor, target_encoder, target: str, metrics: dict, config: dict
) -> None:
    """Writes the files that make ``folder`` a model (see the module's docstring); the folder
    is created if needed. ``target`` is the name of the predicted column."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    preprocessing = {
        "format": FORMAT,
        "version": VERSION,
        "task": target_encoder.task,
        "target": target,
        "target_encoding": target_encoder.to_dict(),
        "preprocessor": preprocessor.to_dict(),
    }
    _write_json(folder / PREPROCESSING, preprocessing)
    save_model(model, folder / MODEL)
    _write_json(folder / METRICS, metrics)
    _write_json(folder / CONFIG, config)
    write_columns(folder, preprocessor.report)


def check_columns(preprocessor, frame, source: str, needed_by: str) -> None:
    """TableError naming ``source`` and the columns ``frame`` lacks that ``preprocessor`` reads."""
    missing = [name for name in preprocessor.columns if name not in frame.columns]
    if missing:
        columns = ", ".join(repr(str(c)) for c in list(frame.columns)[:20])
        more = ", ..." if len(frame.columns) > 20 else ""
        raise TableError(
            f"{source} has no column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}, "
            f"which {needed_by} needs; "
            f"its columns are [{columns}{more}]"
        )


def prediction_frame(outputs: np.ndarray, target_encoder, target: str, identifiers=None):
    """The predictions as a pandas DataFrame: the ``identifiers`` frame's columns first (when
    given), then the predicted ``target`` (the class label, decoded, and one probability
    column per class for classification; the value in the target's units for regression)."""
    import pandas as pd

    frame = pd.DataFrame(index=range(len(outputs)))
    if identifiers is not None:
        for name in identifiers.columns:
            frame[name] = identifiers[name].to_numpy()
    if target_encoder.task == "classification":
        frame[target] = target_encoder.decode(outputs)
        probabilities = softmax(np.ascontiguousarray(outputs, dtype=np.float32))
        for j, label in enumerate(target_encoder.classes):
            frame[probability_column(label)] = probabilities[:, j]
    else:
        values = target_encoder.decode(outputs)
        names = [target] if values.shape[1] == 1 else [f"{target}_{j}" for j in range(values.shape[1])]
        for j, name in enumerate(names):
            frame[name] = values[:, j]
    return frame


@dataclass
class Run:
    """A trained model with its preprocessing, as :func:`load_run` reads it from a run folder."""

    folder: Path
    model: object
    preprocessor: Preprocessor
    target_encoder: TargetEncoder
    target: str
    task: str
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def predict(self, data):
        """Predictions for ``data`` (a pandas DataFrame, or the path of a table that
        :func:`~saddlepoint.data.tables.read_table` reads) as a DataFrame, one row per input row
        in the same order: the input's identifier columns first (those it has), then the
        predicted ``target``: the class label (in the training table's labels) and ``P(label)``
        for each class, or the value in the target's units.

        TableError (a ValueError) naming the table and the column when a column the model
        needs is missing; the table's own reading errors as ``read_table`` raises them.
        """
        import pandas as pd

        source = "the table"
        if not isinstance(data, pd.DataFrame):
            source = str(data)
            data = read_table(data)
        check_columns(self.preprocessor, data, source, f"the model of {self.folder}")
        if len(data) == 0:
            raise TableError(f"{source} has no rows to predict")
        try:
            X = self.preprocessor.transform(data)
        except ValueError as e:  # a cell that is not a number in a column of numbers
            raise TableError(f"{source}: {e}") from None
        outputs = predict(self.model, X)
        ids = [name for name in self.preprocessor.identifier_columns if name in data.columns]
        return prediction_frame(outputs, self.target_encoder, self.target, data[ids] if ids else None)


def _read_json(path: Path, folder: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(
            f"{folder} is not a saddlepoint run folder: it has no {path.name} "
            f"(saddlepoint train writes one into its --out folder)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path} cannot be read as JSON: {e}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(value).__name__}")
    return value


def load_run(folder) -> Run:
    """The :class:`Run` that ``saddlepoint train`` (or :func:`save_run`) wrote to ``folder``.

    ValueError naming the folder when it is not a run folder (no such folder, no
    ``preprocessing.json`` or ``model.safetensors``) or a file in it is not what it should be.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is a file, not a run folder"
        raise ValueError(f"{folder} {what}")
    meta = _read_json(folder / PREPROCESSING, folder)
    where = folder / PREPROCESSING
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{where} is not a saddlepoint run's preprocessing (its format is {meta.get('format')!r})"
        )
    if meta.get("version") != VERSION:
        raise ValueError(
            f"{where}: version must be {VERSION} (this saddlepoint reads that one), got {meta.get('version')!r}"
        )
    try:
        preprocessor = Preprocessor.from_dict(meta["preprocessor"])
        target_encoder = TargetEncoder.from_dict(meta["target_encoding"])
        target, task = str(meta["target"]), str(meta["task"])
    except KeyError as e:
        raise ValueError(f"{where} has no {e.args[0]!r} entry") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where} does not describe a preprocessing: {e}") from None
    if not (folder / MODEL).is_file():
        raise ValueError(f"{folder} is not a saddlepoint run folder: it has no {MODEL}")
    model = load_model(folder / MODEL)
    model.eval()
    metrics = _read_json(folder / METRICS, folder) if (folder / METRICS).is_file() else {}
    config = _read_json(folder / CONFIG, folder) if (folder / CONFIG).is_file() else {}
    return Run(folder, model, preprocessor, target_encoder, target, task, metrics, config)
