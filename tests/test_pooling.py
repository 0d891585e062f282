"""Pooling (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d): the kernels against plain NumPy loops in
float32 and float64, bit-identity across thread counts, float64 gradient checks, the R-operator
pairs against central differences, invariants (hypothesis), bad input and empty batches."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rop import check_layer

import saddlepoint as sp
from saddlepoint import _core, nn
from saddlepoint.nn.scratch import reusing_buffers

from gradcheck import assert_gradient_close, numerical_gradient

# --- plain NumPy twins: loops over every window, in float64 ----------------------------------------


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def windows(shape, kernel, stride, padding):
    """``(oh, ow, rows, cols)`` of every output of a pooling of an (H, W) plane: the input rows
    and columns under the window, the padding left out."""
    (h, w), (kh, kw), (sh, sw), (ph, pw) = shape, pair(kernel), pair(stride), pair(padding)
    out_h, out_w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    for oh, ow in itertools.product(range(out_h), range(out_w)):
        rows = range(max(oh * sh - ph, 0), min(oh * sh - ph + kh, h))
        cols = range(max(ow * sw - pw, 0), min(ow * sw - pw + kw, w))
        yield oh, ow, rows, cols


def out_size(shape, kernel, stride, padding):
    (h, w), (kh, kw), (sh, sw), (ph, pw) = shape, pair(kernel), pair(stride), pair(padding)
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def max_pool_twin(x, kernel, stride, padding):
    """Values and flat positions of the maxima (the first on ties), and the backward pass."""
    n, c, h, w = x.shape
    out_h, out_w = out_size((h, w), kernel, stride, padding)
    out, at = np.empty((n, c, out_h, out_w)), np.empty((n, c, out_h, out_w), np.int64)
    for i, j in itertools.product(range(n), range(c)):
        for oh, ow, rows, cols in windows((h, w), kernel, stride, padding):
            best, where = -np.inf, rows[0] * w + cols[0]
            for r, s in itertools.product(rows, cols):
                if x[i, j, r, s] > best:
                    best, where = x[i, j, r, s], r * w + s
            out[i, j, oh, ow], at[i, j, oh, ow] = best, where
    return out, at


def max_pool_backward_twin(grad_out, at, shape):
    grad = np.zeros(shape)
    n, c, h, w = shape
    for i, j, oh, ow in itertools.product(*map(range, grad_out.shape)):
        grad[i, j].reshape(-1)[at[i, j, oh, ow]] += grad_out[i, j, oh, ow]
    return grad


def avg_pool_twin(x, kernel, stride, padding):
    n, c, h, w = x.shape
    area = math.prod(pair(kernel))
    out = np.empty((n, c) + out_size((h, w), kernel, stride, padding))
    for oh, ow, rows, cols in windows((h, w), kernel, stride, padding):
        out[:, :, oh, ow] = x[:, :, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].sum(axis=(2, 3)) / area
    return out


def avg_pool_backward_twin(grad_out, shape, kernel, stride, padding):
    grad = np.zeros(shape)
    area = math.prod(pair(kernel))
    for oh, ow, rows, cols in windows(shape[2:], kernel, stride, padding):
        grad[:, :, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] += (
            grad_out[:, :, oh, ow, None, None] / area
        )
    return grad


def adaptive_windows(size, out):
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def adaptive_twin(x, output_size):
    (out_h, out_w), (h, w) = pair(output_size), x.shape[2:]
    out = np.empty(x.shape[:2] + (out_h, out_w))
    for (oh, (r0, r1)), (ow, (c0, c1)) in itertools.product(
        enumerate(adaptive_windows(h, out_h)), enumerate(adaptive_windows(w, out_w))
    ):
        out[:, :, oh, ow] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


def adaptive_backward_twin(grad_out, shape):
    grad = np.zeros(shape)
    (out_h, out_w), (h, w) = grad_out.shape[2:], shape[2:]
    for (oh, (r0, r1)), (ow, (c0, c1)) in itertools.product(
        enumerate(adaptive_windows(h, out_h)), enumerate(adaptive_windows(w, out_w))
    ):
        grad[:, :, r0:r1, c0:c1] += grad_out[:, :, oh, ow, None, None] / ((r1 - r0) * (c1 - c0))
    return grad


# (input shape, kernel_size, stride, padding): batch 1, one channel, non-square, overlapping and
# gapped windows, padding, kernels as large as the (padded) input.
GRID = [
    ((2, 3, 6, 6), 2, 2, 0),
    ((2, 2, 7, 5), 2, 2, 0),  # 2 x 2 windows (their own loops) leaving a row and a column out
    ((1, 1, 5, 7), 3, 2, 1),
    ((2, 2, 7, 5), (3, 2), (1, 2), (1, 1)),
    ((3, 1, 4, 9), (2, 4), (2, 3), (0, 2)),
    ((1, 2, 4, 4), 4, 1, 0),
    ((1, 1, 3, 3), 5, 1, 2),
    ((2, 1, 3, 5), (5, 3), 2, (1, 1)),
    ((1, 3, 9, 8), 3, 3, 0),
    ((2, 2, 5, 5), 1, 2, 0),
    ((1, 1, 1, 1), 1, 1, 0),
]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


@pytest.mark.parametrize("shape,kernel,stride,padding", GRID)
def test_max_pool_kernels_match_numpy(dtype, rng, shape, kernel, stride, padding):
    x = rng.standard_normal(shape).astype(dtype)
    expected, expected_at = max_pool_twin(x.astype(np.float64), kernel, stride, padding)
    out, at = np.empty(expected.shape, dtype), np.empty(expected.shape, np.int64)
    _core.max_pool2d_forward(x, pair(kernel), pair(stride), pair(padding), out, at)
    np.testing.assert_array_equal(out, expected.astype(dtype))
    np.testing.assert_array_equal(at, expected_at)
    grad_out = rng.standard_normal(out.shape).astype(dtype)
    grad = np.full(shape, np.nan, dtype)
    _core.max_pool2d_backward(grad_out, at, grad)
    np.testing.assert_allclose(
        grad, max_pool_backward_twin(grad_out.astype(np.float64), at, shape), **TOL[dtype]
    )


@pytest.mark.parametrize("shape,kernel,stride,padding", GRID)
def test_avg_pool_kernels_match_numpy(dtype, rng, shape, kernel, stride, padding):
    x = rng.standard_normal(shape).astype(dtype)
    expected = avg_pool_twin(x.astype(np.float64), kernel, stride, padding)
    out = np.empty(expected.shape, dtype)
    _core.avg_pool2d_forward(x, pair(kernel), pair(stride), pair(padding), out)
    np.testing.assert_allclose(out, expected, **TOL[dtype])
    grad_out = rng.standard_normal(out.shape).astype(dtype)
    grad = np.full(shape, np.nan, dtype)
    _core.avg_pool2d_backward(grad_out, pair(kernel), pair(stride), pair(padding), grad)
    twin = avg_pool_backward_twin(grad_out.astype(np.float64), shape, kernel, stride, padding)
    np.testing.assert_allclose(grad, twin, **TOL[dtype])


@pytest.mark.parametrize(
    "shape,output_size",
    [
        ((2, 3, 7, 6), (3, 4)),
        ((1, 1, 5, 5), 1),
        ((2, 3, 20, 17), 1),  # global pooling of planes of 256 elements and more: 64 lanes
        ((2, 2, 3, 4), (5, 7)),
        ((1, 2, 8, 8), 4),
        ((3, 1, 1, 6), (2, 3)),
    ],
)
def test_adaptive_avg_pool_kernels_match_numpy(dtype, rng, shape, output_size):
    x = rng.standard_normal(shape).astype(dtype)
    expected = adaptive_twin(x.astype(np.float64), output_size)
    out = np.empty(expected.shape, dtype)
    _core.adaptive_avg_pool2d_forward(x, out)
    np.testing.assert_allclose(out, expected, **TOL[dtype])
    grad_out = rng.standard_normal(out.shape).astype(dtype)
    grad = np.full(shape, np.nan, dtype)
    _core.adaptive_avg_pool2d_backward(grad_out, grad)
    np.testing.assert_allclose(grad, adaptive_backward_twin(grad_out.astype(np.float64), shape), **TOL[dtype])


def test_max_pool_ties_pick_the_first_maximum_and_nan_propagates():
    x = np.array([[[[1, 1, np.nan, 2], [0, 1, 3, np.nan], [-np.inf] * 4, [-np.inf, -np.inf, 2, 2]]]])
    layer = nn.MaxPool2d(2)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, [[[[1, np.nan], [-np.inf, 2]]]])
    np.testing.assert_array_equal(layer._indices, [[[[0, 7], [8, 14]]]])  # PyTorch's positions
    grad = layer.backward(np.ones_like(y))
    assert grad.sum() == 4 and grad[0, 0, 1, 3] == 1 and grad[0, 0, 2, 0] == 1


# --- threads -----------------------------------------------------------------------------------------


@pytest.fixture
def restore_threads():
    before = sp.get_num_threads()
    yield
    sp.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_are_bit_identical_for_any_thread_count(restore_threads, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 24, 30, 30)).astype(dtype)  # above the parallel threshold
    layers = [nn.MaxPool2d(2), nn.MaxPool2d(3, 2, 1), nn.AvgPool2d(2), nn.AvgPool2d(3, 2, 1)]
    layers += [nn.AdaptiveAvgPool2d((4, 7)), nn.AdaptiveAvgPool2d(1)]
    results = []
    for threads in (1, 2, 3):
        sp.set_num_threads(threads)
        arrays = []
        for layer in layers:
            y = layer.forward(x)
            arrays += [y, layer.backward(np.cos(y))]
        results.append(b"".join(a.tobytes() for a in arrays))
    assert results[0] == results[1] == results[2]


# --- gradients and the R-operator -----------------------------------------------------------------


def layers_to_check():
    return [
        nn.MaxPool2d(2),
        nn.MaxPool2d((3, 2), stride=(1, 2), padding=(1, 1)),
        nn.AvgPool2d(2),
        nn.AvgPool2d((3, 2), stride=(2, 1), padding=1),
        nn.AdaptiveAvgPool2d((3, 2)),
        nn.AdaptiveAvgPool2d(1),
    ]


@pytest.mark.parametrize("layer", layers_to_check(), ids=repr)
def test_gradient_matches_central_differences(layer, rng):
    x = rng.permutation(2 * 3 * 5 * 6).reshape(2, 3, 5, 6) * 0.1  # distinct values: no ties
    weights = rng.standard_normal(layer.forward(x).shape)
    layer.forward(x)
    analytic = layer.backward(weights)
    numeric = numerical_gradient(lambda: float(np.sum(layer.forward(x) * weights)), x)
    assert_gradient_close(analytic, numeric)


@pytest.mark.parametrize("layer", layers_to_check(), ids=repr)
@pytest.mark.parametrize("with_rx", [True, False], ids=["rx", "no-rx"])
def test_r_operator_matches_central_differences(layer, with_rx, rng):
    x = rng.permutation(2 * 3 * 5 * 6).reshape(2, 3, 5, 6) * 0.1  # a step of 1e-6 moves no maximum
    check_layer(layer, x, with_rx=with_rx, rng=rng)


def test_exact_hessian_products_through_a_small_cnn_with_pooling(rng):
    from saddlepoint import diagnose as dg

    class Flatten(nn.Module):
        def forward(self, x):
            self._shape = x.shape
            return x.reshape(len(x), -1)

        def backward(self, g):
            return g.reshape(self._shape)

        def r_forward(self, x, rx, v):
            return self.forward(x), None if rx is None else rx.reshape(len(rx), len(x), -1)

        def r_backward(self, g, rg, v, rgrads):
            return self.backward(g), rg.reshape((len(rg),) + self._shape)

    class Scale(nn.Module):  # a per-channel weight before the pooling, so it has parameters
        def __init__(self):
            self.weight = nn.Parameter(rng.uniform(0.5, 1.5, (1, 2, 1, 1)))

        def forward(self, x):
            self._x = x
            return x * self.weight.data

        def backward(self, g):
            self.weight.grad += (g * self._x).sum(axis=(0, 2, 3), keepdims=True)
            return g * self.weight.data

        def r_forward(self, x, rx, v):
            y = self.forward(x)
            self._rx = rx
            ry = v["weight"] * x
            return y, ry if rx is None else ry + rx * self.weight.data

        def r_backward(self, g, rg, v, rgrads):
            gin = self.backward(g)
            rgrads["weight"] += (rg * self._x).sum(axis=(1, 3, 4), keepdims=True)
            if self._rx is not None:
                rgrads["weight"] += (g * self._rx).sum(axis=(1, 3, 4), keepdims=True)
            return gin, rg * self.weight.data + v["weight"] * g

    model = sp.Sequential(
        Scale(),
        nn.MaxPool2d(2),
        sp.Tanh(),
        nn.AvgPool2d(2, stride=1, padding=1),
        nn.AdaptiveAvgPool2d((2, 2)),
        Flatten(),
        sp.Dense(8, 3, dtype=np.float64, rng=0),
    )
    X = rng.permutation(20 * 2 * 6 * 6).reshape(20, 2, 6, 6) / 500.0
    y = rng.integers(0, 3, 20)
    objective = dg.Objective(model, sp.CrossEntropyLoss(), X, y)
    assert objective.exact_hvp
    V = rng.standard_normal((2, objective.size))
    products = objective.hessian_vector_products(V)
    h = 1e-5
    expected = np.array(
        [
            (objective.gradient(objective.point + h * v)[1] - objective.gradient(objective.point - h * v)[1])
            / (2 * h)
            for v in V
        ]
    )
    np.testing.assert_allclose(products, expected, rtol=1e-5, atol=1e-7 * np.abs(expected).max())


# --- invariants -------------------------------------------------------------------------------------


@st.composite
def pooled_inputs(draw, padding=True):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph = draw(st.integers(0, kh // 2)) if padding else 0
    pw = draw(st.integers(0, kw // 2)) if padding else 0
    h = draw(st.integers(max(kh - 2 * ph, 1), 9))
    w = draw(st.integers(max(kw - 2 * pw, 1), 9))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).standard_normal((n, c, h, w))
    return x, (kh, kw), stride, (ph, pw)


@settings(max_examples=60, deadline=None)
@given(pooled_inputs(padding=False))
def test_max_pooling_is_at_least_average_pooling_without_padding(case):
    x, kernel, stride, padding = case
    top, mean = nn.MaxPool2d(kernel, stride, padding), nn.AvgPool2d(kernel, stride, padding)
    assert np.all(top.forward(x) >= mean.forward(x) - 1e-12)


@settings(max_examples=60, deadline=None)
@given(pooled_inputs(), st.sampled_from(["max", "avg", "adaptive"]))
def test_gradients_spread_the_output_gradient_by_each_window_share(case, kind):
    x, kernel, stride, padding = case
    if kind == "adaptive":
        layer = nn.AdaptiveAvgPool2d(stride)
    else:
        layer = (nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(kernel, stride, padding)
    y = layer.forward(x)
    g = np.random.default_rng(0).standard_normal(y.shape)
    grad = layer.backward(g)
    assert grad.shape == x.shape
    if kind == "avg":  # each output gives its window the share of the kernel over the input
        share = np.zeros(y.shape[2:])
        for oh, ow, rows, cols in windows(x.shape[2:], kernel, stride, padding):
            share[oh, ow] = len(rows) * len(cols) / math.prod(kernel)
        np.testing.assert_allclose(
            grad.sum(axis=(2, 3)), (g * share).sum(axis=(2, 3)), rtol=1e-10, atol=1e-10
        )
    else:  # the whole gradient goes to the input, to one position (max) or spread (adaptive)
        np.testing.assert_allclose(grad.sum(axis=(2, 3)), g.sum(axis=(2, 3)), rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(pooled_inputs(padding=False))
def test_pooling_a_constant_gives_the_constant(case):
    x, kernel, stride, padding = case
    x = np.full_like(x, 1.5)
    for layer in (nn.MaxPool2d(kernel, stride), nn.AvgPool2d(kernel, stride), nn.AdaptiveAvgPool2d(stride)):
        np.testing.assert_allclose(layer.forward(x), 1.5, rtol=1e-15)


# --- layers: dtypes, buffers, configs, empty batches, bad input ------------------------------------


@pytest.mark.parametrize("layer", layers_to_check(), ids=repr)
def test_layers_take_the_float_dtype_of_their_input(layer, rng, dtype):
    x = rng.standard_normal((2, 3, 5, 6)).astype(dtype)
    y = layer.forward(x)
    assert y.dtype == dtype and layer.backward(np.ones_like(y)).dtype == dtype
    with pytest.raises(TypeError, match="grad_output must have dtype"):
        layer.backward(np.ones(y.shape, np.float32 if dtype == np.float64 else np.float64))


def test_training_steps_reuse_buffers(rng):
    layer = nn.MaxPool2d(2)
    x = rng.standard_normal((4, 2, 6, 6)).astype(np.float32)
    with reusing_buffers():
        y1, g1 = layer.forward(x), layer.backward(np.ones((4, 2, 3, 3), np.float32))
        y2, g2 = layer.forward(x), layer.backward(np.ones((4, 2, 3, 3), np.float32))
    assert y1 is y2 and g1 is g2
    assert layer.forward(x) is not y2


@pytest.mark.parametrize("layer", layers_to_check(), ids=repr)
def test_an_empty_batch_gives_empty_results(layer, dtype):
    x = np.ones((0, 3, 5, 6), dtype)
    y = layer.forward(x)
    assert y.shape[:2] == (0, 3) and y.dtype == dtype
    assert layer.backward(np.ones_like(y)).shape == x.shape
    _, ry = layer.r_forward(x, np.ones((2,) + x.shape, dtype), {})
    assert ry.shape == (2,) + y.shape


def test_configs_and_reprs_follow_the_constructor():
    layer = nn.MaxPool2d((3, 2), padding=(1, 0))
    assert repr(layer) == "MaxPool2d(kernel_size=(3, 2), stride=(3, 2), padding=(1, 0))"
    assert layer.config() == {
        "class": "MaxPool2d",
        "kernel_size": [3, 2],
        "stride": [3, 2],
        "padding": [1, 0],
    }
    assert nn.from_config(layer.config()).config() == layer.config()
    assert repr(nn.AvgPool2d(2, 1)) == "AvgPool2d(kernel_size=2, stride=1, padding=0)"
    assert nn.AdaptiveAvgPool2d([2, 3]).config() == {"class": "AdaptiveAvgPool2d", "output_size": [2, 3]}
    assert repr(nn.AdaptiveAvgPool2d(1)) == "AdaptiveAvgPool2d(output_size=1)"
    assert not nn.MaxPool2d(2).parameters() and nn.MaxPool2d(2).state_dict() == {}


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: nn.MaxPool2d(0), r"kernel_size must be a positive integer, got 0"),
        (lambda: nn.MaxPool2d(2, stride=0), r"stride must be a positive integer, got 0"),
        (lambda: nn.AvgPool2d((2, 2), stride=(1, 0)), r"stride\[1\] must be a positive integer, got 0"),
        (lambda: nn.MaxPool2d(3, padding=2), r"padding must be at most half of kernel_size 3, got 2"),
        (lambda: nn.AvgPool2d(2, padding=-1), r"padding must be an integer >= 0, got -1"),
        (lambda: nn.MaxPool2d((2, 2, 2)), r"kernel_size must be a list of 2 values"),
        (lambda: nn.MaxPool2d(1.5), r"kernel_size must be a positive integer, got 1.5"),
        (lambda: nn.AdaptiveAvgPool2d(0), r"output_size must be a positive integer, got 0"),
    ],
)
def test_bad_hyperparameters_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "make", [lambda: nn.MaxPool2d(2), lambda: nn.AvgPool2d(2), lambda: nn.AdaptiveAvgPool2d(2)]
)
def test_bad_inputs_raise_errors_naming_the_argument(make):
    layer = make()
    with pytest.raises(
        ValueError, match=r"x must be 4-dimensional \(batch, channels, height, width\), got shape"
    ):
        layer.forward(np.ones((3, 4, 4)))
    with pytest.raises(ValueError, match="x must have at least one channel, row and column"):
        layer.forward(np.ones((2, 0, 4, 4)))
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        layer.forward(np.ones((2, 1, 4, 4), np.int64))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((2, 1, 2, 2)))
    layer.forward(np.ones((2, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"grad_output must have the shape of the last forward's output"):
        layer.backward(np.ones((2, 1, 3, 2)))


def test_a_kernel_larger_than_the_padded_input_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"kernel_size: \(5, 5\) is larger than the padded input: x has"):
        nn.MaxPool2d(5, padding=1).forward(np.ones((1, 1, 2, 3)))
    nn.MaxPool2d(5, padding=2).forward(np.ones((1, 1, 1, 1)))  # exactly as large: one window


def test_kernels_refuse_bad_arguments_and_write_nothing(rng):
    x, out, at = rng.standard_normal((1, 1, 4, 4)), np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64)
    with pytest.raises(ValueError, match=r"stride: must be positive, got \(0, 2\)"):
        _core.max_pool2d_forward(x, (2, 2), (0, 2), (0, 0), out, at)
    with pytest.raises(
        ValueError, match=r"padding: must be at most half of kernel_size \(2, 2\), got \(2, 0\)"
    ):
        _core.avg_pool2d_forward(x, (2, 2), (2, 2), (2, 0), out)
    with pytest.raises(ValueError, match=r"out must have shape \(1, 1, 2, 2\), got \(1, 1, 3, 2\)"):
        _core.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0), np.zeros((1, 1, 3, 2)))
    with pytest.raises(ValueError, match="must be an integer in"):
        _core.avg_pool2d_forward(x, (2, -2), (2, 2), (0, 0), out)
    with pytest.raises(TypeError, match="pair of integers"):
        _core.avg_pool2d_forward(x, 2, (2, 2), (0, 0), out)
    grad = np.full((1, 1, 4, 4), 7.0)
    with pytest.raises(ValueError, match=r"indices: must be in \[0, 16\)"):
        _core.max_pool2d_backward(np.ones((1, 1, 2, 2)), np.array([[[[0, 1], [16, 2]]]]), grad)
    assert np.all(grad == 7.0)
    with pytest.raises(ValueError, match=r"grad_input must have shape \(1, 1, 4, 4\), got \(2, 1, 4, 4\)"):
        _core.max_pool2d_backward(np.ones((1, 1, 2, 2)), at, np.zeros((2, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"out must have the batch and channels of x"):
        _core.adaptive_avg_pool2d_forward(x, np.zeros((1, 2, 2, 2)))
