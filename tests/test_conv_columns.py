"""Conv2d's kept column matrices: the forward kernel writes them to a ``columns`` array, the
backward kernel multiplies them instead of building them again, with the same bits as without,
for any thread count; the layer keeps them inside ``reusing_buffers`` only, and up to
``max_kept_columns`` elements."""

from __future__ import annotations

import numpy as np
import pytest
from test_conv import CASE_IDS, CASES, draw, forward, reference_backward, reference_forward, restore_threads

import saddlepoint as sp

__all__ = ["restore_threads"]  # a fixture, used by name
from saddlepoint import _core
from saddlepoint.nn import Conv2d
from saddlepoint.nn.scratch import reusing_buffers


def columns_len(x, weight, out):
    _, c, _, _ = x.shape
    _, _, kh, kw = weight.shape
    n, _, oh, ow = out.shape
    return n * c * kh * kw * oh * ow


def with_columns(x, weight, b, gy, geometry):
    """The forward pass writing its columns, and the backward pass (every gradient) reading them."""
    out = np.full_like(forward(x, weight, b, geometry), np.nan)
    columns = np.full(columns_len(x, weight, out), np.nan, x.dtype)
    _core.conv2d_forward(x, weight, b, out, *geometry, columns=columns)
    gw, gb, gx = np.ones_like(weight), np.ones_like(b), np.full_like(x, np.nan)
    _core.conv2d_backward(x, weight, gy, gw, gb, gx, *geometry, columns=columns)
    return out, gw, gb, gx


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_kept_columns_give_the_same_bits(case, dtype, rng):
    x, weight, b, geometry = draw(case, dtype, rng)
    out = forward(x, weight, b, geometry)
    gy = rng.standard_normal(out.shape).astype(dtype)
    gw, gb, gx = np.ones_like(weight), np.ones_like(b), np.full_like(x, np.nan)
    _core.conv2d_backward(x, weight, gy, gw, gb, gx, *geometry)
    kept = with_columns(x, weight, b, gy, geometry)
    for got, expected in zip(kept, (out, gw, gb, gx)):
        assert got.tobytes() == expected.tobytes()
    # and the NumPy twin, for the padded and unpadded paths alike
    ew, eb, ex = reference_backward(x, weight, gy, *geometry)
    scale = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(
        kept[0], reference_forward(x, weight, b, *geometry), rtol=scale, atol=scale * 10
    )
    np.testing.assert_allclose(kept[1], ew + 1, rtol=scale, atol=scale * 100)
    np.testing.assert_allclose(kept[3], ex, rtol=scale, atol=scale * 100)


@pytest.mark.parametrize(
    "case",
    [
        (32, 8, 12, 12, 16, (3, 3), (1, 1), (1, 1), (1, 1), 1),  # chunks of blocks
        (9, 1, 28, 28, 6, (5, 5), (1, 1), (2, 2), (1, 1), 1),  # LeNet's first: one sample per block
        (7, 6, 10, 9, 6, (3, 3), (2, 1), (1, 1), (1, 1), 3),
    ],
)
def test_kept_columns_are_bit_identical_for_1_2_and_3_threads(case, dtype, restore_threads):
    rng = np.random.default_rng(5)
    x, weight, b, geometry = draw(case, dtype, rng)
    gy = rng.standard_normal(forward(x, weight, b, geometry).shape).astype(dtype)
    results = set()
    for threads in (1, 2, 3):
        sp.set_num_threads(threads)
        results.add(b"".join(a.tobytes() for a in with_columns(x, weight, b, gy, geometry)))
    assert len(results) == 1


# Kernels of many taps with padding: im2col and col2im go through a zero-padded copy of the input.
PADDED_CASES = [
    (3, 1, 12, 12, 2, (5, 5), (1, 1), (2, 2), (1, 1), 1),  # LeNet's first convolution, smaller
    (2, 2, 12, 12, 3, (5, 5), (1, 1), (2, 0), (1, 1), 1),  # padded rows only
    (2, 4, 10, 10, 4, (5, 5), (1, 1), (2, 2), (1, 1), 2),  # groups
    (17, 1, 8, 8, 2, (5, 5), (1, 1), (2, 2), (1, 1), 1),  # blocks of samples
]


@pytest.mark.parametrize("case", PADDED_CASES, ids=[f"padded{i}" for i in range(len(PADDED_CASES))])
def test_padded_copies_match_the_numpy_twin(case, dtype, rng):
    x, weight, b, geometry = draw(case, dtype, rng)
    out = forward(x, weight, b, geometry)
    gy = rng.standard_normal(out.shape).astype(dtype)
    ew, eb, ex = reference_backward(x, weight, gy, *geometry)
    scale = 1e-12 if dtype == np.float64 else 1e-5
    for got, expected in zip(with_columns(x, weight, b, gy, geometry), (out, ew + 1, eb + 1, ex)):
        np.testing.assert_allclose(got, expected, rtol=scale, atol=scale * 100)
    np.testing.assert_allclose(out, reference_forward(x, weight, b, *geometry), rtol=scale, atol=scale * 10)
    gw, gb, gx = np.ones_like(weight), np.ones_like(b), np.full_like(x, np.nan)
    _core.conv2d_backward(x, weight, gy, gw, gb, gx, *geometry)
    np.testing.assert_allclose(gx, ex, rtol=scale, atol=scale * 100)


def test_columns_of_the_wrong_size_or_dtype_are_refused_and_change_nothing(rng):
    x, weight, b, geometry = draw((2, 2, 5, 5, 3, (3, 3), (1, 1), (1, 1), (1, 1), 1), np.float32, rng)
    out = forward(x, weight, b, geometry)
    length = columns_len(x, weight, out)
    for columns, error, message in [
        (np.zeros(length - 1, np.float32), ValueError, "columns"),
        (np.zeros(length, np.float64), TypeError, "columns"),
        (np.zeros((2, length // 2), np.float32), ValueError, "columns"),
    ]:
        before = out.copy()
        with pytest.raises(error, match=message):
            _core.conv2d_forward(x, weight, b, out, *geometry, columns=columns)
        assert out.tobytes() == before.tobytes() and not columns.any()
        gw = np.zeros_like(weight)
        with pytest.raises(error, match=message):
            _core.conv2d_backward(x, weight, out, gw, None, None, *geometry, columns=columns)
        assert not gw.any()


def lenet_like(max_kept_columns):
    model = sp.Sequential(
        Conv2d(1, 4, 5, padding=2, rng=0),
        sp.ReLU(),
        sp.nn.MaxPool2d(2),
        Conv2d(4, 6, 3, rng=1),
        sp.ReLU(),
        sp.nn.Flatten(),
        sp.Dense(6 * 5 * 5, 10, rng=2),
    )
    for layer in model.layers:
        if isinstance(layer, Conv2d):
            layer.max_kept_columns = max_kept_columns
    return model


def test_training_with_kept_columns_is_training_without(rng):
    x = rng.standard_normal((8, 1, 14, 14)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    runs = []
    for keep in (1 << 23, 0):
        model, loss = lenet_like(keep), sp.losses.CrossEntropyLoss()
        optimizer = sp.Adam(model.parameters(), lr=1e-2)
        for _ in range(3):
            sp.training.train_step(model, loss, optimizer, x, y)
        convs = [layer for layer in model.layers if isinstance(layer, Conv2d)]
        assert all((layer._columns is not None) == bool(keep) for layer in convs)
        runs.append(b"".join(p.data.tobytes() + p.grad.tobytes() for p in model.parameters()))
    assert runs[0] == runs[1]


def test_columns_are_kept_only_while_buffers_are_reused(rng):
    layer = Conv2d(2, 3, 3, padding=1, rng=0)
    x = rng.standard_normal((4, 2, 5, 5)).astype(np.float32)
    layer(x)
    assert layer._columns is None  # outside the scope an array per call would cost more
    with reusing_buffers():
        out = layer(x)
        assert layer._columns is not None and layer._columns.size == 4 * 2 * 9 * 25
        kept = layer.backward(np.ones_like(out)).copy()
    layer(x)  # a forward outside the scope forgets them: its input is another array
    assert layer._columns is None
    np.testing.assert_array_equal(layer.backward(np.ones_like(out)), kept)
    pointwise = Conv2d(2, 3, 1, rng=0)
    with reusing_buffers():
        pointwise(x)
    assert pointwise._columns is None  # its columns are its input


def test_a_failed_forward_forgets_the_columns(rng):
    layer = Conv2d(2, 3, 3, rng=0)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    with reusing_buffers():
        out = layer(x)
        with pytest.raises(ValueError):
            layer(x[:, :, :2, :2])  # smaller than the kernel
    assert layer._columns is None
    assert layer.backward(np.ones_like(out)).shape == x.shape
