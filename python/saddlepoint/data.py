"""Data sets and mini-batches."""

from __future__ import annotations

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
    """
    batch_size = positive_int("batch_size", batch_size)
    if n_samples < 1:
        raise ValueError(f"the data set must have at least one sample, got {n_samples}")
    order = np.random.default_rng(rng).permutation(n_samples) if shuffle else np.arange(n_samples)
    stop = n_samples - n_samples % batch_size if drop_last else n_samples
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]
