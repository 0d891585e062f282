"""Validation metrics by name."""

from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "mse", "mae", "r2")
"""The metric names a :class:`Trainer` and :func:`metric_value` accept."""


def metric_value(name: str, outputs: np.ndarray, y: np.ndarray) -> float:
    """Accuracy (argmax of scores, or sign of a single logit), MSE, MAE or R² of ``outputs``.

    Examples
    --------
    >>> scores = np.array([[0.1, 0.9], [0.8, 0.2]])
    >>> sp.training.metric_value("accuracy", scores, np.array([1, 1]))
    0.5
    """
    if name == "accuracy":
        predicted = outputs.argmax(axis=1) if outputs.shape[1] > 1 else (outputs[:, 0] > 0).astype(int)
        return float(np.mean(predicted == y.reshape(-1)))
    error = outputs.reshape(y.shape) - y
    if name == "mse":
        return float(np.mean(error**2))
    if name == "mae":
        return float(np.mean(np.abs(error)))
    if name == "r2":
        total = np.sum((y - y.mean(axis=0)) ** 2)
        return float(1 - np.sum(error**2) / total) if total > 0 else float("nan")
    raise ValueError(f"metric must be one of {METRICS}, got {name!r}")


def classification_scores(probabilities: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Scores of class ``probabilities`` (one column per class, or one column: the probability
    of class 1) against labels ``y`` in 0..C-1, by scikit-learn's ``sklearn.metrics``:
    ``accuracy``, ``balanced_accuracy`` (the mean recall of the classes in ``y``), ``macro_f1``
    (the unweighted mean F1 of the classes in ``y`` or predicted) and, for two classes that
    both occur in ``y``, ``roc_auc`` (from the probability of class 1)."""
    import warnings

    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

    p = np.asarray(probabilities, dtype=np.float64)
    p = p.reshape(len(p), -1)
    y = np.asarray(y).reshape(-1)
    if len(p) != len(y) or len(y) == 0:
        raise ValueError(
            f"probabilities and y must have the same number of rows, at least 1, got {len(p)} and {len(y)}"
        )
    if p.shape[1] == 1:
        positive, predicted, n_classes = p[:, 0], (p[:, 0] > 0.5).astype(np.int64), 2
    else:
        positive, predicted, n_classes = p[:, -1], p.argmax(axis=1), p.shape[1]
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": not an error here
        warnings.simplefilter("ignore")
        scores = {
            "accuracy": float(accuracy_score(y, predicted)),
            "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
            "macro_f1": float(f1_score(y, predicted, average="macro", zero_division=0)),
        }
        if n_classes == 2 and len(np.unique(y)) == 2:
            scores["roc_auc"] = float(roc_auc_score(y, positive))
    return scores
