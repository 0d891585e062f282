"""Mini-batch indices."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..validation import positive_int


def minibatches(
    n_samples: int, batch_size: int, rng=None, shuffle: bool = True, drop_last: bool = False
) -> Iterator[np.ndarray]:
    """Index arrays of the mini-batches of one epoch.

    With ``shuffle`` the order is a fresh permutation drawn from ``rng`` (a
    ``numpy.random.Generator`` or seed) each call, i.e. each epoch, as the course prescribes.
    With ``drop_last`` the last, incomplete batch is left out, so fewer samples than
    ``batch_size`` give no batch at all, as PyTorch's ``DataLoader`` (``Trainer.fit`` refuses
    that case with a ValueError).

    Examples
    --------
    >>> [batch.tolist() for batch in sp.data.minibatches(5, 2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    >>> [len(batch) for batch in sp.data.minibatches(5, 2, rng=0, drop_last=True)]
    [2, 2]
    """
    batch_size = positive_int("batch_size", batch_size)
    if n_samples < 1:
        raise ValueError(f"the data set must have at least one sample, got {n_samples}")
    order = np.random.default_rng(rng).permutation(n_samples) if shuffle else np.arange(n_samples)
    stop = n_samples - n_samples % batch_size if drop_last else n_samples
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]
