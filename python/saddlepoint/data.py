"""Data sets and mini-batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .layers import positive_int

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


def minibatches(n_samples: int, batch_size: int, rng=None, shuffle: bool = True,
                drop_last: bool = False) -> Iterator[np.ndarray]:
    """Index arrays of the mini-batches of one epoch.

    With ``shuffle`` the order is a fresh permutation drawn from ``rng`` (a
    ``numpy.random.Generator`` or seed) each call, i.e. each epoch, as the course prescribes.
    With ``drop_last`` the last, incomplete batch is left out, so fewer samples than
    ``batch_size`` give no batch at all, as PyTorch's ``DataLoader`` (``Trainer.fit`` refuses
    that case with a ValueError).
    """
    batch_size = positive_int("batch_size", batch_size)
    if n_samples < 1:
        raise ValueError(f"the data set must have at least one sample, got {n_samples}")
    order = np.random.default_rng(rng).permutation(n_samples) if shuffle else np.arange(n_samples)
    stop = n_samples - n_samples % batch_size if drop_last else n_samples
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


@dataclass
class CrossValidationResult:
    """Per-fold scores of :func:`cross_validate`, their mean and standard deviation."""

    metric: str
    scores: list
    histories: list = field(repr=False, default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores))

    def to_dict(self) -> dict:
        return {"metric": self.metric, "scores": list(self.scores), "mean": self.mean, "std": self.std}

    def __str__(self) -> str:
        folds = ", ".join(f"{s:.4f}" for s in self.scores)
        return f"{len(self.scores)}-fold {self.metric}: {self.mean:.4f} ± {self.std:.4f} ({folds})"


def cross_validate(make_trainer, X, y, *, epochs: int, cv=5, shuffle: bool = True, seed=0,
                   metric: str = "accuracy", preprocess=None) -> CrossValidationResult:
    """N-fold cross validation (the course's way to choose a model without touching the test set).

    Parameters
    ----------
    make_trainer : callable returning a fresh :class:`~saddlepoint.Trainer` (new model) per fold
    cv : int or a scikit-learn splitter
        With an int, scikit-learn's ``StratifiedKFold`` for classification (integer labels) or
        ``KFold`` otherwise, shuffled with ``seed`` when ``shuffle``. Unshuffled folds keep the
        data's order — which can hold a distribution shift between folds (a mismatch).
    metric : a :class:`~saddlepoint.Trainer` metric or ``"loss"``, scored on each held-out fold
    preprocess : a scikit-learn transformer (e.g. ``StandardScaler()``), cloned and fitted on
        each training fold only
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold

    X, y = np.asarray(X), np.asarray(y)
    if isinstance(cv, (int, np.integer)):
        if cv < 2:
            raise ValueError(f"cv must be at least 2 folds, got {cv}")
        classification = y.ndim == 1 and y.dtype.kind in "iub"
        kind = StratifiedKFold if classification else KFold
        cv = kind(int(cv), shuffle=shuffle, random_state=seed if shuffle else None)
    scores, histories = [], []
    for train, test in cv.split(X, y):
        X_train, X_test = X[train], X[test]
        if preprocess is not None:
            transformer = clone(preprocess).fit(X_train)
            X_train, X_test = transformer.transform(X_train), transformer.transform(X_test)
        trainer = make_trainer()
        histories.append(trainer.fit(X_train, y[train], epochs=epochs))
        scores.append(trainer.evaluate(X_test, y[test])[metric])
    return CrossValidationResult(metric, scores, histories)


def load_csv(path, target: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X, y, feature_names)`` from a CSV file with a header row; every cell must be a number.

    Errors name the file, the row and the column: a missing target column, a non-numeric or
    empty cell, rows of the wrong length, no data rows.
    """
    import csv

    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path} is empty: it needs a header row and data rows")
    header = [h.strip() for h in rows[0]]
    if target not in header:
        raise ValueError(f"{path} has no column {target!r}; its columns are {header}")
    data = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    if not data:
        raise ValueError(f"{path} has a header but no data rows")
    values = np.empty((len(data), len(header)))
    for i, row in enumerate(data, start=2):
        if len(row) != len(header):
            raise ValueError(f"{path} line {i} has {len(row)} cells, the header has {len(header)}")
        for j, cell in enumerate(row):
            try:
                values[i - 2, j] = float(cell)
            except ValueError:
                raise ValueError(f"{path} line {i}, column {header[j]!r}: {cell!r} is not a number") from None
    t = header.index(target)
    features = [h for j, h in enumerate(header) if j != t]
    return np.delete(values, t, axis=1), values[:, t], features


def infer_task(y: np.ndarray) -> str:
    """``"classification"`` for integer targets with few distinct values (at most 20, and at
    most half the samples), else ``"regression"``."""
    y = np.asarray(y)
    distinct = np.unique(y)
    integral = y.dtype.kind in "iub" or np.all(distinct == np.round(distinct))
    if integral and len(distinct) <= min(20, max(2, len(y) // 2)):
        return "classification"
    return "regression"
