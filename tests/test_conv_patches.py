"""Conv2d's weight gradient from patches (output pixels × taps × channels), taken by samples
with at least 16 input channels a group and at least as many output pixels as rows of their
column matrices: against the NumPy twin in float32 and float64, bit-identical for 1, 2 and 3
threads, and with the forward's kept columns (which it does not read) the same bits."""

from __future__ import annotations

import numpy as np
import pytest
from test_conv import assert_close, draw, forward, reference_backward, restore_threads  # noqa: F401
from test_conv_columns import with_columns

import saddlepoint as sp
from saddlepoint import _core

# (batch, in, H, W, out, kernel, stride, padding, dilation, groups)
CASES = [
    (3, 16, 32, 32, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    (3, 32, 40, 33, 6, (3, 3), (2, 1), (1, 2), (1, 2), 2),  # groups; dilated: tap by tap
    (32, 16, 24, 24, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),  # parallel, chunks of samples
]
CASE_IDS = ["3x3", "groups-stride-dilation", "chunks"]


@pytest.mark.parametrize("accumulate", [True, False], ids=["accumulate", "overwrite"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_weight_gradient_matches_the_numpy_twin(case, accumulate, dtype, rng):
    x, weight, b, geometry = draw(case, dtype, rng)
    gy = rng.standard_normal(forward(x, weight, b, geometry).shape).astype(dtype)
    ew, eb, ex = reference_backward(x, weight, gy, *geometry)
    start = rng.standard_normal(weight.shape).astype(dtype)
    gw, gb, gx = start.copy(), np.zeros_like(b), np.full_like(x, np.nan)
    _core.conv2d_backward(x, weight, gy, gw, gb, gx, *geometry, accumulate=accumulate)
    assert_close(gw, ew + start if accumulate else ew, dtype)
    assert_close(gb, eb, dtype)
    assert_close(gx, ex, dtype)


@pytest.mark.usefixtures("restore_threads")  # imported from test_conv
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_bit_identical_for_1_2_and_3_threads_and_with_kept_columns(case, dtype):
    rng = np.random.default_rng(5)
    x, weight, b, geometry = draw(case, dtype, rng)
    gy = rng.standard_normal(forward(x, weight, b, geometry).shape).astype(dtype)
    results = []
    for threads in (1, 2, 3, 1):
        sp.set_num_threads(threads)
        gw, gb, gx = np.ones_like(weight), np.ones_like(b), np.empty_like(x)
        _core.conv2d_backward(x, weight, gy, gw, gb, gx, *geometry)
        results.append(b"".join(a.tobytes() for a in (forward(x, weight, b, geometry), gw, gb, gx)))
        results.append(b"".join(a.tobytes() for a in with_columns(x, weight, b, gy, geometry)))
    assert len(set(results)) == 1
