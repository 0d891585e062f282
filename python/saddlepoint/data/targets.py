"""Targets encoded in one place: what a task is, the loss and metric it trains with, and the form
its targets take (class labels as int64 0..C-1, regression targets as float columns).

The :class:`~saddlepoint.training.Trainer` (:func:`training_targets`), the command line and
:func:`~saddlepoint.diagnose.guide` (:class:`TargetEncoder`) all use these, so a label set or a
target column is read the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from ..validation import OneOf
from .checks import infer_task

TASKS = ("classification", "regression")
"""The two kinds of task: a class label per sample, or numbers."""
#: The metric each task is scored with.
TASK_METRICS = {"classification": "accuracy", "regression": "r2"}
_TASK = OneOf(*TASKS)


def check_task(task) -> str:
    """``task`` when it is "classification" or "regression", else a ValueError naming it."""
    return _TASK.check("task", task)


def task_loss(task: str):
    """A fresh loss for ``task``: cross-entropy on class labels, or mean squared error."""
    return CrossEntropyLoss() if check_task(task) == "classification" else MSELoss()


def is_classification_loss(loss) -> bool:
    """Whether ``loss`` takes class labels (or 0/1 targets) rather than real-valued targets."""
    return isinstance(loss, (CrossEntropyLoss, BCEWithLogitsLoss))


def task_of(y, task: str | None = None) -> tuple[str, np.ndarray]:
    """``(task, y)``: ``task`` checked (inferred from ``y`` when None: one column of few integer
    values is classification), and ``y`` as 1-D labels for classification. A classification
    target of several columns (one-hot rows) is refused."""
    y = np.asarray(y)
    labels = y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)
    task = check_task(task or (infer_task(y.ravel()) if labels else "regression"))
    if task == "classification":
        if not labels:
            raise ValueError(
                f"y must hold one class label per sample for classification, got "
                f"shape {y.shape}; pass labels, not one-hot rows"
            )
        y = y.ravel()
    return task, y


def training_targets(y: np.ndarray, classification: bool, dtype) -> np.ndarray:
    """``y`` as a loss takes it: class labels given as floats or bools become int64 (other
    label arrays, and BCE's 0/1 columns, stay as they are); real-valued targets become
    C-contiguous ``dtype``, one column per output (a 1-D target is one column)."""
    if classification:
        return y.astype(np.int64) if y.dtype.kind in "fb" and y.ndim == 1 else y
    y = np.ascontiguousarray(y, dtype=dtype)
    return y.reshape(-1, 1) if y.ndim == 1 else y


@dataclass(frozen=True, eq=False)
class TargetEncoder:
    """The targets' encoding, fitted once and applied to every split.

    Classification: the labels (of every split, so that none is unknown) become their index
    in ``classes``, 0..C-1. Regression: the targets become float64 columns standardized with the
    training split's ``mean`` and ``scale`` (1 for a constant column); :meth:`decode` maps
    model outputs back to the targets' units.

    Examples
    --------
    >>> from saddlepoint.data import TargetEncoder
    >>> labels = TargetEncoder.fit("classification", np.array(["b", "a", "b"]))
    >>> labels.classes.tolist(), labels.encode(np.array(["a", "b"])).tolist()
    (['a', 'b'], [0, 1])
    >>> values = TargetEncoder.fit("regression", np.array([1.0, 3.0]))
    >>> values.encode(np.array([1.0, 3.0])).ravel().tolist(), values.decode(np.zeros((1, 1))).tolist()
    ([-1.0, 1.0], [[2.0]])
    """

    task: str
    classes: np.ndarray | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    @classmethod
    def fit(cls, task: str, y, *others) -> TargetEncoder:
        """The encoding of ``task`` fitted on the training targets ``y`` (class labels also
        from ``others``, the other splits' targets; None entries are skipped)."""
        if check_task(task) == "classification":
            splits = [np.asarray(s).ravel() for s in (y, *others) if s is not None]
            return cls(task, classes=np.unique(np.concatenate(splits)))
        column = _columns(y)
        scale = column.std(axis=0)
        return cls(task, mean=column.mean(axis=0), scale=np.where(scale > 0, scale, 1.0))

    @property
    def labels(self) -> list:
        """The class labels (index ``i`` is class ``i``) as plain Python values; ``[]`` for
        regression."""
        return [] if self.classes is None else self.classes.tolist()

    def to_dict(self) -> dict:
        """The encoding as JSON-ready values: ``task`` and the ``classes`` (the labels), or the
        regression targets' ``mean`` and ``scale``."""
        if self.classes is not None:
            return {"task": self.task, "classes": self.labels}
        mean, scale = self._standardization()
        return {"task": self.task, "mean": mean.tolist(), "scale": scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> TargetEncoder:
        """The encoding :meth:`to_dict` wrote (a ValueError when it is not one)."""
        task = check_task(data.get("task"))
        if task == "classification":
            classes = data.get("classes")
            if not isinstance(classes, list) or len(classes) < 2:
                raise ValueError(
                    f"a classification encoding needs a list of 2 or more classes, got {classes!r}"
                )
            return cls(task, classes=np.array(classes))
        mean, scale = (np.asarray(data.get(k), dtype=np.float64) for k in ("mean", "scale"))
        if mean.ndim != 1 or mean.shape != scale.shape or not np.all(scale > 0):
            raise ValueError("a regression encoding needs mean and positive scale lists of one length")
        return cls(task, mean=mean, scale=scale)

    @property
    def n_out(self) -> int:
        """The model outputs the task needs: one per class, or one per target column."""
        return len(self.classes) if self.classes is not None else len(self._standardization()[0])

    def _standardization(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, scale)`` of a regression encoding (one without ``classes``)."""
        if self.mean is None or self.scale is None:
            raise TypeError("a TargetEncoder without classes needs mean and scale")
        return self.mean, self.scale

    @property
    def metric(self) -> str:
        return TASK_METRICS[self.task]

    def loss(self):
        """A fresh loss for the task."""
        return task_loss(self.task)

    def encode(self, y) -> np.ndarray | None:
        """``y`` encoded (None stays None): int64 class indices or standardized float64 columns."""
        if y is None:
            return None
        if self.classes is not None:
            labels = np.asarray(y).ravel()
            index = np.minimum(np.searchsorted(self.classes, labels), len(self.classes) - 1)
            unknown = self.classes[index] != labels
            if np.any(unknown):
                raise ValueError(
                    f"the label {_plain(labels[np.argmax(unknown)])!r} is not one of the classes {self.labels}"
                )
            return index.astype(np.int64, copy=False)
        mean, scale = self._standardization()
        return (_columns(y) - mean) / scale

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Model outputs in the targets' terms: the predicted class labels, or the regression
        outputs in the targets' units (float64 columns)."""
        if self.classes is not None:
            return self.classes[np.argmax(outputs, axis=1)]
        mean, scale = self._standardization()
        return np.asarray(outputs, dtype=np.float64) * scale + mean

    def baseline(self, encoded: np.ndarray) -> float:
        """The loss of the best constant prediction on ``encoded`` targets: the entropy of the
        class frequencies, or the targets' mean variance."""
        if self.classes is not None:
            frequencies = np.bincount(encoded, minlength=len(self.classes)) / len(encoded)
            nonzero = frequencies[frequencies > 0]
            return float(-np.sum(nonzero * np.log(nonzero)))
        return float(np.mean((encoded - encoded.mean(axis=0)) ** 2))


def _columns(y) -> np.ndarray:
    """``y`` as float64 columns (a 1-D target is one column)."""
    array = np.asarray(y, dtype=np.float64)
    return array.reshape(-1, 1) if array.ndim == 1 else array


def drop_missing_target(frame, target: str):
    """``(frame, dropped)``: the rows of the DataFrame ``frame`` whose ``target`` cell is not
    missing, and how many were dropped."""
    missing = frame[target].isna().to_numpy()
    return frame.loc[~missing], int(missing.sum())


def _plain(value):
    """A NumPy scalar as the Python value it holds."""
    return value.item() if isinstance(value, np.generic) else value


def _label_text(label) -> str:
    return repr(label) if isinstance(label, str) else str(label)


def target_values(column, task: str | None = None, name: str = "target") -> tuple[str, np.ndarray]:
    """``(task, y)`` for a target column without missing cells (a pandas Series or an array).

    The task is ``task`` when given, else inferred: text and booleans are classification,
    numbers follow :func:`~saddlepoint.data.checks.infer_task`. Class labels come as strings
    (text), booleans, or int64 (whole numbers, even when stored as floats); regression targets
    as float64. A ValueError names the column when the target cannot be learned: a single class
    (or a constant regression target), fractional class labels, text for regression.
    """
    values = np.asarray(getattr(column, "to_numpy", lambda: column)())
    if values.dtype == object:
        kinds = {type(v) for v in values}
        if kinds <= {bool, np.bool_}:
            values = values.astype(bool)
        elif kinds <= {str, np.str_}:
            values = values.astype(str)
        else:
            try:
                values = values.astype(np.float64)
            except (TypeError, ValueError):
                values = np.array([str(v) for v in values])
    text = values.dtype.kind in "UOSb"
    task = check_task(task) if task else ("classification" if text else infer_task(values))
    if task == "classification":
        if values.dtype.kind == "f":
            if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
                raise ValueError(f"the target column {name!r} needs integer class labels for classification")
            values = values.astype(np.int64)
        distinct = np.unique(values)
        if len(distinct) < 2:
            raise ValueError(
                f"the target column {name!r} holds a single class ({_label_text(distinct[0].item())}): "
                "there is nothing to learn"
            )
        return task, values
    if values.dtype.kind in "USb":
        raise ValueError(
            f"the target column {name!r} holds {'booleans' if values.dtype.kind == 'b' else 'text'} "
            f"({_label_text(values[0].item())}); regression needs numbers"
        )
    values = values.astype(np.float64)
    if len(values) and np.all(values == values[0]):
        raise ValueError(f"the target column {name!r} is constant ({values[0]:g}): there is nothing to learn")
    return task, values
