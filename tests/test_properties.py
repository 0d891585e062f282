"""Hypothesis property tests: softmax and loss invariants, shapes."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from saddlepoint import losses

finite = st.floats(-50, 50, allow_nan=False, width=64)
float_dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def logits(draw):
    rows, cols = draw(st.integers(1, 20)), draw(st.integers(1, 12))
    dtype = draw(float_dtypes)
    return draw(arrays(np.float64, (rows, cols), elements=finite)).astype(dtype)


@settings(max_examples=200, deadline=None)
@given(logits())
def test_softmax_rows_are_distributions(z):
    p = losses.softmax(z)
    assert p.shape == z.shape and p.dtype == z.dtype
    assert np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


@settings(max_examples=200, deadline=None)
@given(logits(), st.floats(-100, 100))
def test_softmax_ignores_a_shift_of_each_row(z, shift):
    tol = 1e-4 if z.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(losses.softmax(z + z.dtype.type(shift)), losses.softmax(z), atol=tol)


@settings(max_examples=200, deadline=None)
@given(logits())
def test_log_softmax_is_log_of_softmax(z):
    tol = 1e-4 if z.dtype == np.float32 else 1e-10
    lp = losses.log_softmax(z)
    assert np.all(lp <= 0)
    np.testing.assert_allclose(np.exp(lp), losses.softmax(z), atol=tol)


@settings(max_examples=200, deadline=None)
@given(logits(), st.data(), st.floats(0, 1))
def test_cross_entropy_is_nonnegative_and_its_gradient_rows_sum_to_zero(z, data, smoothing):
    labels = np.array(data.draw(st.lists(st.integers(0, z.shape[1] - 1), min_size=len(z), max_size=len(z))))
    loss, grad = losses.cross_entropy(z, labels, label_smoothing=smoothing)
    assert loss >= -1e-6 and np.isfinite(loss)
    assert grad.shape == z.shape
    tol = 1e-5 if z.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=tol)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(1, 5), float_dtypes, st.data())
def test_regression_losses_are_nonnegative_and_zero_at_the_target(rows, cols, dtype, data):
    x = data.draw(arrays(np.float64, (rows, cols), elements=finite)).astype(dtype)
    t = data.draw(arrays(np.float64, (rows, cols), elements=finite)).astype(dtype)
    for fn in (losses.mse_loss, losses.l1_loss):
        loss, grad = fn(x, t)
        assert loss >= 0 and grad.shape == x.shape
        zero, zero_grad = fn(x, x)
        assert zero == 0 and not np.any(zero_grad)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 50), elements=st.floats(-1e4, 1e4)), float_dtypes, st.data())
def test_bce_with_logits_is_finite_and_nonnegative(z, dtype, data):
    t = data.draw(arrays(np.float64, z.shape, elements=st.floats(0, 1))).astype(dtype)
    loss, grad = losses.binary_cross_entropy_with_logits(z.astype(dtype), t)
    assert np.isfinite(loss) and loss >= 0
    assert np.all(np.isfinite(grad)) and np.all(np.abs(grad) <= 1.0 / z.size + 1e-7)
