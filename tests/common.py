"""Helpers shared by several test files."""

import numpy as np


def misaligned(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` starting one byte past an aligned address, as a Dask worker can
    deserialize it or numpy.frombuffer make it."""
    raw = np.empty(array.nbytes + 1, dtype=np.uint8)
    copy = np.frombuffer(raw.data, dtype=array.dtype, count=array.size, offset=1).reshape(array.shape)
    copy[...] = array
    assert not copy.flags.aligned
    return copy
