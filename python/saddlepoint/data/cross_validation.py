"""K-fold cross validation of a trainer factory."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._jobs import check_n_jobs, run_jobs
from ..validation import Integer, is_integer

#: ``cv`` given as a number of folds.
FOLDS = Integer(2).described("at least 2 folds")


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


def cross_validate(
    make_trainer,
    X,
    y,
    *,
    epochs: int,
    cv=5,
    shuffle: bool = True,
    seed=0,
    metric: str = "accuracy",
    preprocess=None,
    n_jobs=None,
) -> CrossValidationResult:
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
    n_jobs : int or None, default None
        Folds trained at once, through ``joblib.Parallel`` (as in scikit-learn: None is one at a
        time unless a ``joblib.parallel_config`` context says otherwise, -1 one per core). Under
        ``joblib.parallel_config(backend="ray")`` or ``backend="dask"`` the folds run on that
        cluster. ``make_trainer`` then runs in the workers, so it must be picklable by cloudpickle
        (a lambda or a local function is). The results are the serial run's exactly.

    X : array_like, (n_samples, ...)
    y : array_like, (n_samples,) or (n_samples, n_outputs)
    epochs : int
        Epochs of training on each fold.
    shuffle : bool
    seed : int

    Returns
    -------
    CrossValidationResult
        Each fold's score, their mean and standard deviation, and each fold's history.

    Examples
    --------
    >>> from saddlepoint.data import cross_validate
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 2)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> def make_trainer():
    ...     model = sp.mlp([2, 8, 2], rng=0)
    ...     return sp.Trainer(model, sp.CrossEntropyLoss(), sp.Adam(model.parameters(), lr=0.05),
    ...                       metrics=["accuracy"], verbose=0, seed=0)
    >>> result = cross_validate(make_trainer, X, y, epochs=10, cv=3)
    >>> len(result.scores), result.mean > 0.8
    (3, True)
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    X, y = np.asarray(X), np.asarray(y)
    n_jobs = check_n_jobs(n_jobs)
    if is_integer(cv):
        cv = FOLDS.check("cv", cv)
        classification = y.ndim == 1 and y.dtype.kind in "iub"
        kind = StratifiedKFold if classification else KFold
        cv = kind(int(cv), shuffle=shuffle, random_state=seed if shuffle else None)
    folds = ((make_trainer, X, y, train, test, epochs, metric, preprocess) for train, test in cv.split(X, y))
    scores, histories = [], []
    for history, score in run_jobs(_fit_fold, folds, n_jobs):
        histories.append(history)
        scores.append(score)
    return CrossValidationResult(metric, scores, histories)


def _fit_fold(make_trainer, X, y, train, test, epochs: int, metric: str, preprocess):
    """One fold: a fresh trainer fitted on ``train``'s rows; its history and ``test``'s score."""
    from sklearn.base import clone

    X_train, X_test = X[train], X[test]
    if preprocess is not None:
        transformer = clone(preprocess).fit(X_train)
        X_train, X_test = transformer.transform(X_train), transformer.transform(X_test)
    trainer = make_trainer()
    history = trainer.fit(X_train, y[train], epochs=epochs)
    return history, trainer.evaluate(X_test, y[test])[metric]
