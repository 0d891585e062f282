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
            return np.searchsorted(self.classes, np.asarray(y).ravel()).astype(np.int64, copy=False)
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
