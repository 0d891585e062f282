"""Conv2d: the kernels against a direct NumPy convolution (einsum per kernel tap, no im2col) in
float32 and float64, bit-identity across thread counts, the layer's gradients and R-operator
pair against central differences, bad input, empty batches and state dicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rop import check_layer

import saddlepoint as sp
from saddlepoint import _core
from saddlepoint.nn import Conv2d

from gradcheck import assert_gradient_close, numerical_gradient

# --- the NumPy twin -------------------------------------------------------------------------------


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def tap_view(xp, i, j, oh, ow, stride, dilation):
    """The input under kernel tap (i, j) for every output pixel: (N, C, oh, ow), of padded ``xp``."""
    (sh, sw), (dh, dw) = stride, dilation
    return xp[:, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw]


def reference_forward(x, w, b, stride, padding, dilation, groups):
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (ph, pw), og = padding, o // groups
    oh, ow = out_size(h, kh, stride[0], ph, dilation[0]), out_size(wd, kw, stride[1], pw, dilation[1])
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((n, o, oh, ow))
    for g in range(groups):
        xg = xp[:, g * cg : (g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = tap_view(xg, i, j, oh, ow, stride, dilation)
                out[:, g * og : (g + 1) * og] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * og : (g + 1) * og, :, i, j]
                )
    if b is not None:
        out += b.astype(np.float64)[None, :, None, None]
    return out


def reference_backward(x, w, gy, stride, padding, dilation, groups):
    """(grad_weight, grad_bias, grad_input) of ``sum(gy * conv(x, w))``, each tap's adjoint."""
    x, w, gy = x.astype(np.float64), w.astype(np.float64), gy.astype(np.float64)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (ph, pw), og = padding, o // groups
    oh, ow = gy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for g in range(groups):
        gyg = gy[:, g * og : (g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = tap_view(xp[:, g * cg : (g + 1) * cg], i, j, oh, ow, stride, dilation)
                gw[g * og : (g + 1) * og, :, i, j] = np.einsum("nohw,nchw->oc", gyg, patch)
                target = tap_view(gxp[:, g * cg : (g + 1) * cg], i, j, oh, ow, stride, dilation)
                target += np.einsum("nohw,oc->nchw", gyg, w[g * og : (g + 1) * og, :, i, j])
    return gw, gy.sum((0, 2, 3)), gxp[:, :, ph : ph + h, pw : pw + wd]


# (batch, in, H, W, out, kernel, stride, padding, dilation, groups)
CASES = [
    (2, 3, 7, 6, 4, (3, 2), (1, 1), (0, 0), (1, 1), 1),
    (3, 4, 9, 8, 6, (3, 3), (2, 1), (1, 2), (1, 2), 2),
    (1, 1, 5, 5, 1, (5, 5), (1, 1), (0, 0), (1, 1), 1),  # batch 1, one channel, kernel = input
    (2, 2, 3, 4, 3, (5, 4), (1, 1), (1, 0), (1, 1), 1),  # kernel = padded input
    (2, 4, 6, 5, 4, (1, 1), (1, 1), (0, 0), (1, 1), 4),  # pointwise, depthwise
    (2, 4, 6, 5, 8, (1, 1), (1, 1), (0, 0), (1, 1), 2),  # pointwise, groups
    (2, 6, 7, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 6),  # depthwise 3x3
    (2, 2, 4, 3, 3, (3, 3), (3, 2), (2, 1), (2, 1), 1),  # stride, padding, dilation
    (2, 3, 8, 8, 2, (2, 2), (3, 3), (0, 0), (1, 1), 1),  # stride > kernel (skipped pixels)
    (1, 2, 6, 9, 5, (1, 3), (2, 2), (0, 1), (1, 3), 1),  # 1xk kernel with stride: im2col path
    (2, 3, 1, 1, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),  # 1x1 image, all padding but the centre
    (17, 3, 5, 4, 2, (2, 2), (1, 1), (0, 0), (1, 1), 1),  # several chunks of samples
]
CASE_IDS = [f"case{i}" for i in range(len(CASES))]


def draw(case, dtype, rng, bias=True):
    n, c, h, w, o, k, s, p, d, g = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((o, c // g) + k).astype(dtype)
    b = rng.standard_normal(o).astype(dtype) if bias else None
    return x, weight, b, (s, p, d, g)


def forward(x, weight, b, geometry):
    s, p, d, _ = geometry
    oh = out_size(x.shape[2], weight.shape[2], s[0], p[0], d[0])
    ow = out_size(x.shape[3], weight.shape[3], s[1], p[1], d[1])
    out = np.full((x.shape[0], weight.shape[0], max(oh, 0), max(ow, 0)), np.nan, x.dtype)
    _core.conv2d_forward(x, weight, b, out, *geometry)
    return out


def assert_close(actual, expected, dtype):
    scale = max(1.0, float(np.max(np.abs(expected), initial=0)))
    if dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12 * scale)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_matches_the_numpy_twin(case, bias, dtype, rng):
    x, weight, b, geometry = draw(case, dtype, rng, bias)
    out = forward(x, weight, b, geometry)
    assert out.dtype == dtype
    assert_close(out, reference_forward(x, weight, b, *geometry), dtype)


@pytest.mark.parametrize("accumulate", [True, False], ids=["accumulate", "overwrite"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_matches_the_numpy_twin(case, accumulate, dtype, rng):
    x, weight, b, geometry = draw(case, dtype, rng)
    gy = rng.standard_normal(forward(x, weight, b, geometry).shape).astype(dtype)
    ew, eb, ex = reference_backward(x, weight, gy, *geometry)
    start_w, start_b = (
        rng.standard_normal(weight.shape).astype(dtype),
        rng.standard_normal(b.shape).astype(dtype),
    )
    gw, gb, gx = start_w.copy(), start_b.copy(), np.full_like(x, np.nan)
    _core.conv2d_backward(x, weight, gy, gw, gb, gx, *geometry, accumulate=accumulate)
    base_w, base_b = (start_w, start_b) if accumulate else (0, 0)
    assert_close(gw - base_w, ew, dtype)
    assert_close(gb - base_b, eb, dtype)
    assert_close(gx, ex, dtype)


@pytest.mark.parametrize("wanted", ["weight", "bias", "input", "weight+bias", "nothing"])
def test_each_gradient_alone(wanted, dtype, rng):
    x, weight, b, geometry = draw(CASES[1], dtype, rng)
    gy = rng.standard_normal(forward(x, weight, b, geometry).shape).astype(dtype)
    ew, eb, ex = reference_backward(x, weight, gy, *geometry)
    gw = np.zeros_like(weight) if "weight" in wanted else None
    gb = np.zeros_like(b) if "bias" in wanted else None
    gx = np.full_like(x, np.nan) if "input" in wanted else None
    _core.conv2d_backward(x, weight, gy, gw, gb, gx, *geometry)
    for got, expected in [(gw, ew), (gb, eb), (gx, ex)]:
        if got is not None:
            assert_close(got, expected, dtype)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 3),
    groups=st.integers(1, 3),
    per_group=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    size=st.tuples(st.integers(0, 7), st.integers(0, 7)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    seed=st.integers(0, 2**16),
)
def test_random_geometries_match_the_twin_or_are_refused(
    n, groups, per_group, size, kernel, stride, padding, dilation, seed
):
    rng = np.random.default_rng(seed)
    c, o = groups * per_group[0], groups * per_group[1]
    x = rng.standard_normal((n, c) + size)
    weight = rng.standard_normal((o, per_group[0]) + kernel)
    b = rng.standard_normal(o)
    geometry = (stride, padding, dilation, groups)
    fits = all(size[a] + 2 * padding[a] >= dilation[a] * (kernel[a] - 1) + 1 for a in range(2))
    if not fits:
        with pytest.raises(ValueError, match="x must have a padded"):
            forward(x, weight, b, geometry)
        return
    out = forward(x, weight, b, geometry)
    assert_close(out, reference_forward(x, weight, b, *geometry), np.float64)
    gy = rng.standard_normal(out.shape)
    gw, gb, gx = np.zeros_like(weight), np.zeros_like(b), np.full_like(x, np.nan)
    _core.conv2d_backward(x, weight, gy, gw, gb, gx, *geometry, accumulate=False)
    for got, expected in zip((gw, gb, gx), reference_backward(x, weight, gy, *geometry)):
        assert_close(got, expected, np.float64)


# --- thread counts --------------------------------------------------------------------------------


@pytest.fixture
def restore_threads():
    before = sp.get_num_threads()
    yield
    sp.set_num_threads(before)


@pytest.mark.parametrize(
    "case",
    [
        (32, 8, 12, 12, 16, (3, 3), (1, 1), (1, 1), (1, 1), 1),  # parallel, 16 chunks of 2 samples
        (5, 64, 16, 16, 64, (3, 3), (1, 1), (1, 1), (1, 1), 1),  # big per-sample products
        (7, 6, 10, 9, 6, (3, 3), (2, 1), (1, 1), (1, 1), 3),
        (7, 512, 4, 4, 256, (3, 3), (1, 1), (1, 1), (1, 1), 1),  # one chunk of blocks of 3, 3, 1
    ],
)
def test_results_are_bit_identical_for_1_2_and_3_threads(case, dtype, restore_threads):
    rng = np.random.default_rng(11)
    x, weight, b, geometry = draw(case, dtype, rng)
    gy = rng.standard_normal(forward(x, weight, b, geometry).shape).astype(dtype)
    results = []
    for threads in (1, 2, 3, 1):
        sp.set_num_threads(threads)
        out = forward(x, weight, b, geometry)
        gw, gb, gx = np.ones_like(weight), np.ones_like(b), np.empty_like(x)
        _core.conv2d_backward(x, weight, gy, gw, gb, gx, *geometry)
        results.append(b"".join(a.tobytes() for a in (out, gw, gb, gx)))
    assert len(set(results)) == 1
    ew, eb, ex = reference_backward(x, weight, gy, *geometry)
    for got, expected in zip(results_of(x, weight, b, gy, geometry), (ew + 1, eb + 1, ex)):
        assert_close(got, expected, dtype)


def results_of(x, weight, b, gy, geometry):
    gw, gb, gx = np.ones_like(weight), np.ones_like(b), np.empty_like(x)
    _core.conv2d_backward(x, weight, gy, gw, gb, gx, *geometry)
    return gw, gb, gx


# --- the layer --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_channels=2, out_channels=3, kernel_size=3, padding=1),
        dict(in_channels=4, out_channels=2, kernel_size=(2, 3), stride=(2, 1), dilation=(1, 2), groups=2),
        dict(in_channels=2, out_channels=2, kernel_size=1, bias=False),
    ],
)
def test_layer_gradients_match_central_differences(kwargs, rng):
    layer = Conv2d(**kwargs, dtype=np.float64, rng=0)
    x = rng.standard_normal((2, kwargs["in_channels"], 5, 6))
    weights = rng.standard_normal(layer(x).shape)

    def loss():
        return float(np.sum(layer.forward(x) * weights))

    layer.zero_grad()
    layer.forward(x)
    grad_x = layer.backward(weights).copy()
    assert_gradient_close(grad_x, numerical_gradient(loss, x))
    for p in layer.parameters():
        assert_gradient_close(p.grad, numerical_gradient(loss, p.data))


@pytest.mark.parametrize("with_rx", [True, False], ids=["rx", "no-rx"])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_channels=2, out_channels=3, kernel_size=3, padding=1),
        dict(in_channels=4, out_channels=2, kernel_size=(2, 3), stride=(2, 1), dilation=(1, 2), groups=2),
        dict(in_channels=3, out_channels=2, kernel_size=2, bias=False),
    ],
)
def test_r_operator_pair_matches_central_differences(kwargs, with_rx, rng):
    layer = Conv2d(**kwargs, dtype=np.float64, rng=0)
    check_layer(layer, rng.standard_normal((3, kwargs["in_channels"], 5, 6)), with_rx=with_rx, rng=rng)


def test_r_operator_without_the_gradient_of_the_input(rng):
    layer = Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=0).requires_grad_input(False)
    check_layer(layer, rng.standard_normal((2, 2, 4, 4)), rng=rng)


def test_exact_hessian_products_through_a_small_cnn(rng):
    from saddlepoint import diagnose as dg

    model = sp.Sequential(
        Conv2d(1, 2, 3, padding=1, dtype=np.float64, rng=0),
        sp.Tanh(),
        Conv2d(2, 2, 3, stride=2, dtype=np.float64, rng=1),
        sp.Tanh(),
        Flatten4(),
        sp.Dense(8, 3, dtype=np.float64, rng=2),
    )
    X, y = rng.standard_normal((6, 1, 6, 6)), rng.integers(0, 3, 6)
    objective = dg.Objective(model, sp.CrossEntropyLoss(), X, y)
    assert objective.exact_hvp
    V = rng.standard_normal((2, objective.size))
    products = objective.hessian_vector_products(V)
    h = 1e-5
    for v, product in zip(V, products):
        expected = (
            objective.gradient(objective.point + h * v)[1] - objective.gradient(objective.point - h * v)[1]
        ) / (2 * h)
        np.testing.assert_allclose(product, expected, rtol=1e-6, atol=1e-8 * np.max(np.abs(expected)))


class Flatten4(sp.Module):
    """(N, C, H, W) -> (N, C·H·W), with its R-operator pair (a reshape is linear)."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_output):
        return grad_output.reshape(self._shape)

    def r_forward(self, x, rx, v):
        return self.forward(x), None if rx is None else rx.reshape(rx.shape[:2] + (-1,))

    def r_backward(self, g, rg, v, rgrads):
        return self.backward(g), rg.reshape((rg.shape[0],) + self._shape)


def test_default_initialization_is_pytorchs():
    layer = Conv2d(4, 6, (3, 2), groups=2, rng=0)
    bound = 1 / np.sqrt(2 * 3 * 2)
    assert layer.weight.data.shape == (6, 2, 3, 2) and layer.bias.data.shape == (6,)
    for p in (layer.weight.data, layer.bias.data):
        assert p.dtype == np.float32 and np.all(np.abs(p) <= bound) and np.max(np.abs(p)) > bound / 2
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert Conv2d(2, 2, 3, bias=False).bias is None


def test_state_dict_and_config_round_trip(rng):
    layer = Conv2d(4, 6, (3, 2), stride=(1, 2), padding=1, dilation=(2, 1), groups=2, rng=0)
    config = json.loads(json.dumps(layer.config()))
    rebuilt = sp.nn.from_config(config)
    assert isinstance(rebuilt, Conv2d) and rebuilt.config() == layer.config()
    rebuilt.load_state_dict(layer.state_dict())
    x = rng.standard_normal((2, 4, 7, 8)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt(x), layer(x))
    assert repr(layer).startswith("Conv2d(4, 6, kernel_size=(3, 2), stride=(1, 2), padding=(1, 1)")


def test_first_layer_skips_its_input_gradient(rng):
    model = sp.Sequential(Conv2d(1, 2, 3, rng=0), sp.ReLU(), Conv2d(2, 2, 3, rng=1))
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    y = model(x)
    assert model.backward(np.ones_like(y)) is None
    layer = Conv2d(1, 2, 3, rng=0)
    layer(x)
    assert layer.backward(np.ones((2, 2, 4, 4), np.float32)).shape == x.shape


def test_training_steps_reuse_their_buffers(rng):
    layer = Conv2d(2, 3, 3, padding=1, rng=0)
    x = rng.standard_normal((4, 2, 5, 5)).astype(np.float32)
    with sp.nn.scratch.reusing_buffers():
        first = layer(x)
        g1 = layer.backward(np.ones_like(first))
        second = layer(x)
        g2 = layer.backward(np.ones_like(second))
    assert first is second and g1 is g2
    assert layer(x) is not layer(x)


def test_empty_batches(dtype):
    layer = Conv2d(2, 3, 3, padding=1, dtype=dtype, rng=0)
    y = layer(np.zeros((0, 2, 5, 4), dtype))
    assert y.shape == (0, 3, 5, 4)
    layer.zero_grad()
    assert layer.backward(y).shape == (0, 2, 5, 4)
    assert not layer.weight.grad.any() and not layer.bias.grad.any()
    gw, gb = np.ones((3, 2, 3, 3), dtype), np.ones(3, dtype)
    x, w, gy = np.zeros((0, 2, 5, 4), dtype), layer.weight.data, np.zeros((0, 3, 5, 4), dtype)
    _core.conv2d_backward(x, w, gy, gw, gb, None, (1, 1), (1, 1), (1, 1), 1, accumulate=True)
    assert (gw == 1).all() and (gb == 1).all()
    _core.conv2d_backward(x, w, gy, gw, gb, None, (1, 1), (1, 1), (1, 1), 1, accumulate=False)
    assert not gw.any() and not gb.any()


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(in_channels=0, out_channels=2, kernel_size=3), "in_channels must be a positive integer"),
        (dict(in_channels=2, out_channels=2, kernel_size=0), r"kernel_size\[0\] must be a positive integer"),
        (
            dict(in_channels=2, out_channels=2, kernel_size=3, stride=0),
            r"stride\[0\] must be a positive integer",
        ),
        (
            dict(in_channels=2, out_channels=2, kernel_size=3, padding=-1),
            r"padding\[0\] must be an integer >= 0",
        ),
        (
            dict(in_channels=2, out_channels=2, kernel_size=3, dilation=(1, 0)),
            r"dilation\[1\] must be a positive",
        ),
        (
            dict(in_channels=2, out_channels=2, kernel_size=(1, 2, 3)),
            "kernel_size must be a list of 2 values",
        ),
        (dict(in_channels=3, out_channels=2, kernel_size=3, groups=2), "groups must divide in_channels"),
        (dict(in_channels=4, out_channels=3, kernel_size=3, groups=2), "groups must divide"),
    ],
)
def test_constructor_refuses_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv2d(**kwargs)


def test_layer_refuses_bad_input():
    layer = Conv2d(2, 3, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 2, height, width\), got \(2, 2, 5\)"):
        layer(np.zeros((2, 2, 5), np.float32))
    with pytest.raises(
        ValueError, match=r"x must have shape \(batch, 2, height, width\), got \(2, 3, 5, 5\)"
    ):
        layer(np.zeros((2, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"x must have a padded width of at least the kernel's 3"):
        layer(np.zeros((2, 2, 5, 2), np.float32))
    with pytest.raises(TypeError, match="x must have dtype float32"):
        layer(np.zeros((2, 2, 5, 5)))
    with pytest.raises(RuntimeError, match="Conv2d.backward called before forward"):
        Conv2d(2, 3, 3).backward(np.zeros((1, 3, 1, 1), np.float32))


GOOD = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)


@pytest.mark.parametrize(
    "change,error,message",
    [
        (dict(x=np.zeros((2, 4, 5))), ValueError, "x must be 4-dimensional"),
        (dict(weight=np.zeros((3, 4, 3))), ValueError, "weight must be 4-dimensional"),
        (dict(weight=np.zeros((3, 3, 3, 3))), ValueError, r"weight must have shape \(out_channels >= 1, 4,"),
        (
            dict(x=np.zeros((2, 0, 5, 5)), weight=np.zeros((3, 0, 3, 3))),
            ValueError,
            "x must have at least one",
        ),
        (dict(groups=3), ValueError, "groups: must divide the input channels"),
        (dict(groups=0), ValueError, "groups: must be >= 1, got 0"),
        (dict(stride=(0, 1)), ValueError, r"stride: must be a pair of positive integers, got \(0, 1\)"),
        (dict(dilation=(1, 0)), ValueError, "dilation: must be a pair of positive"),
        (
            dict(padding=(-1, 0)),
            ValueError,
            r"padding: must be a pair of non-negative integers, got \(-1, 0\)",
        ),
        (dict(padding=(0, 0), weight=np.zeros((3, 4, 6, 3))), ValueError, "x must have a padded height"),
        (dict(dilation=(1, 4)), ValueError, "x must have a padded width of at least the kernel's 9"),
        (dict(stride=(1, 2**70)), ValueError, "must be an integer in"),
        (dict(stride=3), TypeError, "must be a pair of integers"),
        (dict(out=np.zeros((2, 3, 5, 4))), ValueError, r"out must have shape \(2, 3, 5, 5\)"),
        (dict(bias=np.zeros(4)), ValueError, r"bias must have shape \(3,\)"),
        (dict(weight=np.zeros((3, 4, 3, 3), np.float32)), TypeError, "weight must have dtype float64"),
    ],
)
def test_kernel_errors_name_the_argument_and_change_nothing(change, error, message):
    args = dict(x=np.ones((2, 4, 5, 5)), weight=np.ones((3, 4, 3, 3)), bias=np.ones(3), out=None, **GOOD)
    args["out"] = np.full((2, 3, 5, 5), 7.0)
    args.update(change)
    out_before = args["out"].copy()
    with pytest.raises(error, match=message):
        _core.conv2d_forward(**args)
    np.testing.assert_array_equal(args["out"], out_before)
    if set(change) == {"bias"}:
        return  # the backward pass takes no bias
    grads = dict(
        grad_weight=np.full((3, 4, 3, 3), 5.0),
        grad_bias=np.full(3, 5.0),
        grad_input=np.full((2, 4, 5, 5), 5.0),
    )
    before = {k: v.copy() for k, v in grads.items()}
    backward = {k: v for k, v in args.items() if k not in ("bias", "out")}
    with pytest.raises((ValueError, TypeError)):
        _core.conv2d_backward(
            grad_output=np.ones((2, 3, 4, 4)) if "out" in change else args["out"], **backward, **grads
        )
    for k, v in grads.items():
        np.testing.assert_array_equal(v, before[k])


def test_backward_checks_the_gradients_shapes():
    x, w, gy = np.ones((2, 4, 5, 5)), np.ones((3, 4, 3, 3)), np.ones((2, 3, 5, 5))
    for name, bad, message in [
        ("grad_output", np.ones((2, 3, 4, 5)), r"grad_output must have shape \(2, 3, 5, 5\)"),
        ("grad_weight", np.ones((3, 4, 3, 2)), r"grad_weight must have shape \(3, 4, 3, 3\)"),
        ("grad_bias", np.ones(2), r"grad_bias must have shape \(3,\)"),
        ("grad_input", np.ones((2, 4, 5, 4)), r"grad_input must have shape \(2, 4, 5, 5\)"),
    ]:
        args = dict(grad_output=gy, grad_weight=None, grad_bias=None, grad_input=None)
        args[name] = bad
        with pytest.raises(ValueError, match=message):
            _core.conv2d_backward(x, w, **args, **GOOD)
