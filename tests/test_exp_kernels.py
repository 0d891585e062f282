"""The vectorized exponential (kernels/exp.rs) against numpy.exp, reached through the "exp"
activation, and the kernels built on it (softmax, cross-entropy, sigmoid, tanh, BCE) at the sizes and
inputs where vector loops have edges: row tails, -inf logits, extreme values, several threads."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import saddlepoint as sp
from saddlepoint import _core, losses

import numpy_reference as ref

# The finite arguments where exp's result is neither 0 nor inf, with a margin on both sides.
RANGE = {np.float64: (-760.0, 720.0), np.float32: (-110.0, 95.0)}


@pytest.fixture
def restore_threads():
    before = sp.get_num_threads()
    yield
    sp.set_num_threads(before)


def exp(x):
    out = np.empty_like(x)
    _core.activation_forward("exp", x, out)
    return out


def rounded_exp(x):
    """exp computed in float64 (float128 where it has more bits), rounded to x's dtype."""
    wide = np.longdouble if np.finfo(np.longdouble).nmant > 52 else np.float64
    with np.errstate(over="ignore", under="ignore"):
        return np.exp(x.astype(wide)).astype(x.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_exp_is_within_an_ulp_or_two_of_numpy(dtype, data):
    lo, hi = RANGE[dtype]
    x = data.draw(
        hnp.arrays(
            dtype,
            st.integers(1, 300),
            elements=st.floats(lo, hi, width=np.finfo(dtype).bits, allow_subnormal=True),
        )
    )
    with np.errstate(over="ignore", under="ignore"):
        theirs = np.exp(x)
    # Within 2 ulp of NumPy (which has its own last-bit errors) and 1 ulp of the rounded value;
    # subnormal results have fewer bits: an absolute bound there.
    tiny = np.finfo(dtype).tiny
    normal = np.abs(theirs) >= tiny
    ours = exp(x)
    np.testing.assert_array_max_ulp(ours[normal], theirs[normal], maxulp=2)
    np.testing.assert_array_max_ulp(ours[normal], rounded_exp(x)[normal], maxulp=1)
    assert np.all(np.abs(ours[~normal] - theirs[~normal]) <= 2 * np.finfo(dtype).smallest_subnormal)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_edge_cases(dtype):
    info = np.finfo(dtype)
    overflow = np.log(info.max.astype(np.float64))
    underflow = np.log(info.smallest_subnormal.astype(np.float64)) - 1
    x = np.array(
        [np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, -1.0, info.tiny, -info.tiny, info.smallest_subnormal]
        + [overflow * 0.999999, overflow * 1.00001, 1e30, -1e30, underflow, underflow + 2, -30.0, 30.0]
        + [info.max, -info.max],
        dtype=dtype,
    )
    with np.errstate(over="ignore", under="ignore"):
        expected = np.exp(x)
    ours = exp(x)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(expected))
    np.testing.assert_array_equal(ours == 0, expected == 0)
    finite = np.isfinite(expected) & (expected > 0)
    np.testing.assert_allclose(ours[finite], expected[finite], rtol=4 * info.eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 15, 16, 17, 1000, 400_003])
def test_exp_of_every_length_and_its_derivative(dtype, rng, size):
    lo, hi = RANGE[dtype]
    x = rng.uniform(lo / 2, hi / 2, size).astype(dtype)
    y = exp(x)
    np.testing.assert_array_max_ulp(y, rounded_exp(x), maxulp=1)
    dy = rng.standard_normal(size).astype(dtype)
    dx = np.empty_like(x)
    _core.activation_backward("exp", x, y, dy, dx)
    np.testing.assert_array_equal(dx, dy * y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_is_within_a_few_ulp_of_numpy(dtype, rng):
    edges = [0.625, -0.625, 0.0, -0.0, 1e-30, -1e-300, 20.0, -20.0, 1e30, -1e30, np.inf, -np.inf]
    x = np.concatenate([rng.standard_normal(10_000) * 3, rng.uniform(-0.7, 0.7, 10_000), edges])
    x = x.astype(dtype)
    y = np.empty_like(x)
    _core.activation_forward("tanh", x, y)
    np.testing.assert_array_max_ulp(y, np.tanh(x), maxulp=3)
    np.testing.assert_array_max_ulp(y, np.tanh(x.astype(np.longdouble)).astype(dtype), maxulp=2)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(x))
    nan = np.empty(1, dtype)
    _core.activation_forward("tanh", np.array([np.nan], dtype), nan)
    assert np.isnan(nan[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_nan(dtype):
    x = np.array([-np.inf, -1e30, -200.0, -50.0, 0.0, 50.0, 200.0, 1e30, np.inf], dtype=dtype)
    y = np.empty_like(x)
    _core.activation_forward("sigmoid", x, y)
    with np.errstate(over="ignore"):
        expected = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(dtype)
    np.testing.assert_allclose(y, expected, rtol=2 * np.finfo(dtype).eps, atol=0)
    assert np.isnan(exp(np.array([np.nan], dtype)))[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,classes", [(3, 1), (5, 15), (5, 16), (5, 17), (33, 1000), (130, 7)])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_at_row_tails_matches_numpy(dtype, tol, rng, rows, classes, smoothing):
    z = (rng.standard_normal((rows, classes)) * 6).astype(dtype)
    labels = rng.integers(0, classes, rows)
    weight = rng.uniform(0.5, 2.0, classes).astype(dtype)
    for w in (None, weight):
        loss, grad = losses.cross_entropy(z, labels, w, smoothing)
        expected_loss, expected_grad = ref.cross_entropy(z, labels, w, smoothing)
        np.testing.assert_allclose(loss, expected_loss, **tol)
        np.testing.assert_allclose(grad, expected_grad, rtol=tol["rtol"], atol=tol["atol"] / rows)
    np.testing.assert_allclose(losses.softmax(z), ref.softmax(z), **tol)
    np.testing.assert_allclose(losses.log_softmax(z), ref.log_softmax(z), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_logits_of_minus_inf_are_classes_with_no_mass(dtype, tol, rng):
    """A column of -inf (a masked class) gets probability 0 and gradient 0, and the rest is the
    cross-entropy of the other columns."""
    z = (rng.standard_normal((40, 37)) * 3).astype(dtype)
    labels = rng.integers(0, 30, 40)
    masked = z.copy()
    masked[:, 30:] = -np.inf
    loss, grad = losses.cross_entropy(masked, labels)
    expected_loss, expected_grad = ref.cross_entropy(z[:, :30], labels)
    np.testing.assert_allclose(loss, expected_loss, **tol)
    np.testing.assert_allclose(grad[:, :30], expected_grad, rtol=tol["rtol"], atol=tol["atol"] / 40)
    assert np.all(grad[:, 30:] == 0)
    assert np.all(losses.softmax(masked)[:, 30:] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_give_finite_losses(dtype):
    big = np.finfo(dtype).max / 4
    z = np.array([[big, -big, 0.0, 1.0], [0.0, 0.0, big, big]], dtype=dtype)
    for smoothing in (0.0, 0.1):
        loss, grad = losses.cross_entropy(z, np.array([1, 2]), None, smoothing)
        assert np.isfinite(loss) and np.all(np.isfinite(grad))
    p = losses.softmax(z)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_at_extremes_matches_numpy(dtype, tol, rng):
    z = np.concatenate([rng.standard_normal(1000) * 30, [-700.0, -80.0, 0.0, 80.0, 700.0]]).astype(dtype)
    t = rng.uniform(0, 1, z.size).astype(dtype)
    loss, grad = losses.binary_cross_entropy_with_logits(z, t)
    z64 = z.astype(np.float64)
    terms = np.maximum(z64, 0) - z64 * t + np.log1p(np.exp(-np.abs(z64)))
    with np.errstate(over="ignore"):
        sig = 1 / (1 + np.exp(-z64))
    np.testing.assert_allclose(loss, terms.mean(), **tol)
    np.testing.assert_allclose(grad, (sig - t) / z.size, rtol=tol["rtol"], atol=tol["atol"] / z.size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_kernels_are_bit_identical_for_1_and_2_threads(restore_threads, dtype, rng):
    z = (rng.standard_normal((1024, 1000)) * 4).astype(dtype)
    labels = rng.integers(0, 1000, 1024)
    weight = rng.uniform(0.5, 2.0, 1000).astype(dtype)
    probs = rng.dirichlet(np.ones(1000), 1024).astype(dtype)
    results = []
    for threads in (1, 2):
        sp.set_num_threads(threads)
        run = [
            losses.cross_entropy(z, labels),
            losses.cross_entropy(z, labels, weight, 0.1),
            losses.cross_entropy(z, probs, weight, 0.1),
            losses.binary_cross_entropy_with_logits(z, probs),
        ]
        flat = [v if isinstance(v, float) else v.tobytes() for pair in run for v in pair]
        flat += [losses.softmax(z).tobytes(), losses.log_softmax(z).tobytes(), exp(z).tobytes()]
        for kind in ("sigmoid", "tanh"):
            out = np.empty_like(z)
            _core.activation_forward(kind, z, out)
            flat.append(out.tobytes())
        results.append(flat)
    assert results[0] == results[1]
