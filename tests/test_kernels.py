"""Every kernel against its plain NumPy twin (numpy_reference.py), in float32 and float64."""

import numpy as np
import pytest

from saddlepoint import _core, losses

import numpy_reference as ref

ACTIVATIONS = ["identity", "relu", "leaky_relu", "sigmoid", "hard_sigmoid", "tanh"]


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 3), (64, 33, 17), (300, 200, 100), (1024, 32, 300)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_dense_forward_backward_match_numpy(dtype, rng, shape, with_bias):
    n, n_in, n_out = shape
    x = rng.standard_normal((n, n_in)).astype(dtype)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype) if with_bias else None
    dy = rng.standard_normal((n, n_out)).astype(dtype)
    out = np.empty((n, n_out), dtype)
    _core.dense_forward(x, w, b, out)
    # Sums of n_in products: float32's error grows with the length of the sum.
    scale = np.sqrt(max(n_in, n))
    tol = dict(rtol=1e-5, atol=1e-5 * scale) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out, ref.dense_forward(x, w, b), **tol)

    gw0 = rng.standard_normal((n_out, n_in)).astype(dtype)
    gb0 = rng.standard_normal(n_out).astype(dtype)
    gw, gb, gx = gw0.copy(), gb0.copy(), np.full((n, n_in), np.nan, dtype)
    _core.dense_backward(x, w, dy, gw, gb, gx)
    ew, eb, ex = ref.dense_backward(x, w, dy)
    np.testing.assert_allclose(gw, gw0 + ew, **tol)  # accumulates, as PyTorch
    np.testing.assert_allclose(gb, gb0 + eb, **tol)
    np.testing.assert_allclose(gx, ex, **tol)  # overwritten


def test_dense_backward_skips_grads_given_as_none(rng):
    x, w, dy = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal((4, 2))
    gx = np.empty((4, 3))
    _core.dense_backward(x, w, dy, None, None, gx)
    np.testing.assert_allclose(gx, dy @ w, rtol=1e-12)


@pytest.mark.parametrize("kind", ACTIVATIONS)
@pytest.mark.parametrize("size", [7, 300_000])
def test_activations_match_numpy(dtype, tol, rng, kind, size):
    x = (rng.standard_normal(size) * 4).astype(dtype)
    y = np.empty_like(x)
    _core.activation_forward(kind, x, y, 0.05)
    np.testing.assert_allclose(y, ref.activation(kind, x, 0.05), **tol)
    dy = rng.standard_normal(size).astype(dtype)
    dx = np.empty_like(x)
    _core.activation_backward(kind, x, y, dy, dx, 0.05)
    np.testing.assert_allclose(dx, dy * ref.activation_derivative(kind, x, 0.05), **tol)


@pytest.mark.parametrize("name", ["mse", "l1", "bce"])
@pytest.mark.parametrize("shape", [(3,), (50, 4), (600, 500)])
def test_elementwise_losses_match_numpy(dtype, tol, rng, name, shape):
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.uniform(0, 1, shape).astype(dtype) if name == "bce" else rng.standard_normal(shape).astype(dtype)
    kernel = {"mse": losses.mse_loss, "l1": losses.l1_loss, "bce": losses.binary_cross_entropy_with_logits}[
        name
    ]
    twin = {"mse": ref.mse, "l1": ref.l1, "bce": ref.bce_with_logits}[name]
    loss, grad = kernel(x, t)
    expected_loss, expected_grad = twin(x, t.astype(np.float64))
    assert grad.dtype == dtype
    np.testing.assert_allclose(loss, expected_loss, **tol)
    np.testing.assert_allclose(grad, expected_grad, rtol=tol["rtol"], atol=tol["atol"] / x.size)


@pytest.mark.parametrize("rows,classes", [(1, 1), (8, 3), (257, 10), (7000, 40)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("targets", ["labels", "probabilities"])
def test_cross_entropy_matches_numpy(dtype, tol, rng, rows, classes, weighted, smoothing, targets):
    z = (rng.standard_normal((rows, classes)) * 3).astype(dtype)
    weight = rng.uniform(0.5, 2.0, classes).astype(dtype) if weighted else None
    if targets == "labels":
        t = rng.integers(0, classes, rows)
    else:
        t = rng.dirichlet(np.ones(classes), rows).astype(dtype)
    loss, grad = losses.cross_entropy(z, t, weight, smoothing)
    expected_loss, expected_grad = ref.cross_entropy(z, t, weight, smoothing)
    np.testing.assert_allclose(loss, expected_loss, **tol)
    np.testing.assert_allclose(grad, expected_grad, rtol=tol["rtol"], atol=tol["atol"] / rows)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (10000, 30)])
def test_softmax_and_log_softmax_match_numpy(dtype, tol, rng, shape):
    z = (rng.standard_normal(shape) * 5).astype(dtype)
    np.testing.assert_allclose(losses.softmax(z), ref.softmax(z), **tol)
    np.testing.assert_allclose(losses.log_softmax(z), ref.log_softmax(z), **tol)


def test_one_hot_matches_numpy(dtype):
    labels = np.array([2, 0, 1, 2])
    np.testing.assert_array_equal(losses.one_hot(labels, 4, dtype), np.eye(4, dtype=dtype)[labels])


@pytest.mark.parametrize("size", [10, 300_000])
def test_sgd_step_matches_numpy(dtype, tol, rng, size):
    p = rng.standard_normal(size).astype(dtype)
    g = rng.standard_normal(size).astype(dtype)
    expected = p.astype(np.float64) - 0.1 * g
    _core.sgd_step(
        p,
        g,
        None,
        lr=0.1,
        momentum=0.0,
        dampening=0.0,
        nesterov=False,
        weight_decay=0.0,
        maximize=False,
        first_step=True,
    )
    np.testing.assert_allclose(p, expected, **tol)


@pytest.mark.parametrize("size", [10, 300_000])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.5, np.inf])
def test_norm_part_matches_numpy(dtype, rng, size, norm_type):
    x = rng.standard_normal(size).astype(dtype)
    expected = (
        np.abs(x.astype(np.float64)).max()
        if np.isinf(norm_type)
        else np.sum(np.abs(x.astype(np.float64)) ** norm_type)
    )
    np.testing.assert_allclose(_core.norm_part(x, norm_type), expected, rtol=1e-12)


@pytest.mark.parametrize("size", [10, 300_000])
def test_scale_and_clamp_match_numpy(dtype, rng, size):
    x = rng.standard_normal(size).astype(dtype)
    scaled = x.copy()
    _core.scale_(scaled, 0.3)
    np.testing.assert_array_equal(scaled, x * dtype(0.3))
    clamped = x.copy()
    _core.clamp_(clamped, 0.5)
    np.testing.assert_array_equal(clamped, np.clip(x, -0.5, 0.5))


@pytest.mark.parametrize("size", [1, 13, 300_000])
def test_all_finite_matches_numpy(dtype, rng, size):
    x = (rng.standard_normal(size) * 1e30).astype(dtype)  # huge but finite in float32 too
    assert _core.all_finite(x) == bool(np.isfinite(x).all())
    for bad in (np.nan, np.inf, -np.inf):
        for at in (0, rng.integers(size), size - 1):  # the first, some and the last chunk
            y = x.copy()
            y[at] = bad
            assert _core.all_finite(y) is False


def test_dense_backward_can_overwrite_the_parameter_gradients(dtype, tol, rng):
    x, w, dy = (rng.standard_normal(s).astype(dtype) for s in [(6, 5), (4, 5), (6, 4)])
    gw, gb = np.full((4, 5), 7.0, dtype), np.full(4, 7.0, dtype)
    _core.dense_backward(x, w, dy, gw, gb, None, accumulate=False)
    ew, eb, _ = ref.dense_backward(x, w, dy)
    np.testing.assert_allclose(gw, ew, **tol)
    np.testing.assert_allclose(gb, eb, **tol)


@pytest.mark.parametrize("rows,cols,batch", [(10, 3, 4), (5000, 784, 512)])
def test_gather_rows_matches_numpy_take(dtype, rng, rows, cols, batch):
    x = rng.standard_normal((rows, cols)).astype(dtype)
    idx = rng.integers(0, rows, batch)
    out = np.empty((batch, cols), dtype)
    _core.gather_rows(x, idx, out)
    np.testing.assert_array_equal(out, x[idx])
    with pytest.raises(ValueError, match=rf"indices: must be in \[0, {rows}\), got {rows} at position 0"):
        _core.gather_rows(x, np.array([rows] + [0] * (batch - 1)), out)


@pytest.mark.parametrize("shape", [(0, 3, 2), (2, 0, 3), (2, 3, 0), (0, 0, 0)])
@pytest.mark.parametrize("accumulate", [True, False])
def test_dense_of_zero_sizes_matches_numpy(dtype, tol, rng, shape, accumulate):
    n, n_in, n_out = shape
    x = rng.standard_normal((n, n_in)).astype(dtype)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    dy = rng.standard_normal((n, n_out)).astype(dtype)
    out = np.full((n, n_out), np.nan, dtype)
    _core.dense_forward(x, w, b, out)
    np.testing.assert_allclose(out, ref.dense_forward(x, w, b), **tol)  # no inputs: out = bias
    gw, gb, gx = (
        np.full((n_out, n_in), 3.0, dtype),
        np.full(n_out, 3.0, dtype),
        np.full((n, n_in), np.nan, dtype),
    )
    _core.dense_backward(x, w, dy, gw, gb, gx, accumulate=accumulate)
    ew, eb, ex = ref.dense_backward(x, w, dy)
    start = 3.0 if accumulate else 0.0
    np.testing.assert_allclose(gw, start + ew, **tol)
    np.testing.assert_allclose(gb, start + eb, **tol)
    np.testing.assert_allclose(gx, ex, **tol)


@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (0, 0)])
def test_row_kernels_of_zero_sizes_give_empty_results(dtype, shape):
    x = np.ones(shape, dtype)
    for kind in ACTIVATIONS:
        out = np.empty_like(x)
        _core.activation_forward(kind, x, out)
        _core.activation_backward(kind, x, out, x, np.empty_like(x))
    for fn in (_core.softmax, _core.log_softmax):  # nothing to normalize (NumPy's max of no columns fails)
        fn(x, np.empty_like(x))
    if shape[1]:
        out = np.empty(shape, dtype)
        _core.one_hot(np.zeros(shape[0], np.int64), out)
        assert out.size == 0
    _core.gather_rows(x, np.zeros(0, np.int64), np.empty((0, shape[1]), dtype))
    assert _core.norm_part(x, 2.0) == 0.0 and _core.all_finite(x) is True
    _core.scale_(x, 2.0)
    _core.clamp_(x, 1.0)
    out, mask = np.empty_like(x), np.empty_like(x)
    _core.dropout_forward(x, 0.5, 1, out, mask)
    p, g = np.ones(0, dtype), np.ones(0, dtype)
    _core.adam_step(
        p,
        g,
        np.ones(0, dtype),
        np.ones(0, dtype),
        None,
        lr=0.1,
        beta1=0.9,
        beta2=0.99,
        eps=1e-8,
        weight_decay=0.0,
        decoupled_weight_decay=False,
        maximize=False,
        step_size=0.1,
        bias_correction2_sqrt=1.0,
    )
    if shape[1]:  # layer norm over zero rows is empty; zero features are an error (tests/test_errors.py)
        rows = shape[0]
        _core.layer_norm_forward(
            x, shape[1], None, None, 1e-5, np.empty_like(x), np.empty(rows, dtype), np.empty(rows, dtype)
        )


# --- multi-tensor optimizer steps: one call steps every tensor of a group ----------------------
GROUP_SHAPES = [(5, 3), (0,), (300_000,), (17,), (0, 4)]
MULTI_STEPS = {  # name: (reference step, its hyperparameters, the state's arrays and their ref keys)
    "sgd": (ref.sgd, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01), ("b",)),
    "sgd_nesterov": (ref.sgd, dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True), ("b",)),
    "sgd_plain": (ref.sgd, dict(lr=0.1, weight_decay=0.01), ()),
    "adagrad": (ref.adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01), ("S",)),
    "rmsprop": (ref.rmsprop, dict(lr=0.01, alpha=0.9, weight_decay=0.01), ("v",)),
    "rmsprop_full": (ref.rmsprop, dict(lr=0.01, alpha=0.9, momentum=0.9, centered=True), ("v", "ga", "b")),
    "adam": (ref.adam, dict(lr=0.01, weight_decay=0.01), ("m", "v")),
    "adamw_amsgrad": (
        ref.adam,
        dict(lr=0.01, weight_decay=0.1, amsgrad=True, decoupled=True),
        ("m", "v", "vmax"),
    ),
}


def _multi_step(name, params, grads, state, t):
    """One multi-tensor _core call for the case ``name`` at step ``t`` (state: key -> list)."""
    _, h, _ = MULTI_STEPS[name]
    n = len(params)
    if name.startswith("sgd"):
        _core.sgd_step(
            params,
            grads,
            state.get("b"),
            lr=h["lr"],
            momentum=h.get("momentum", 0.0),
            dampening=h.get("dampening", 0.0),
            nesterov=h.get("nesterov", False),
            weight_decay=h.get("weight_decay", 0.0),
            maximize=h.get("maximize", False),
            first_step=[t == 1] * n,
        )
    elif name == "adagrad":
        clr = h["lr"] / (1 + (t - 1) * h["lr_decay"])
        _core.adagrad_step(
            params,
            grads,
            state["S"],
            clr=[clr] * n,
            eps=1e-10,
            weight_decay=h["weight_decay"],
            maximize=False,
        )
    elif name.startswith("rmsprop"):
        _core.rmsprop_step(
            params,
            grads,
            state["v"],
            state.get("ga"),
            state.get("b"),
            lr=h["lr"],
            alpha=h["alpha"],
            eps=1e-8,
            weight_decay=h.get("weight_decay", 0.0),
            momentum=h.get("momentum", 0.0),
            maximize=False,
        )
    else:
        b1, b2 = 0.9, 0.999
        _core.adam_step(
            params,
            grads,
            state["m"],
            state["v"],
            state.get("vmax"),
            lr=h["lr"],
            beta1=b1,
            beta2=b2,
            eps=1e-8,
            weight_decay=h["weight_decay"],
            decoupled_weight_decay=h.get("decoupled", False),
            maximize=False,
            step_size=[h["lr"] / (1 - b1**t)] * n,
            bias_correction2_sqrt=[np.sqrt(1 - b2**t)] * n,
        )


@pytest.mark.parametrize("name", MULTI_STEPS)
def test_multi_tensor_steps_match_the_per_tensor_numpy_formula(dtype, tol, rng, name):
    step, h, keys = MULTI_STEPS[name]
    params = [rng.standard_normal(s).astype(dtype) for s in GROUP_SHAPES]
    expected = [p.copy() for p in params]
    state = {k: [np.zeros_like(p) for p in params] for k in keys}
    ref_states = [{} for _ in params]
    for t in (1, 2, 3):
        grads = [rng.standard_normal(s).astype(dtype) for s in GROUP_SHAPES]
        _multi_step(name, params, grads, state, t)
        expected = ref.foreach(step, expected, grads, ref_states, **h)
    for ours, theirs in zip(params, expected):
        assert ours.dtype == dtype and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, **tol)


def test_a_multi_tensor_step_gives_the_bits_of_per_tensor_steps(dtype, rng):
    """Per-tensor scalars differ between tensors (tensors at different steps)."""
    shapes = [(784, 512), (512,), (0,), (256, 10)]
    arrays = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(5)]
    arrays[3] = [np.abs(v) for v in arrays[3]]
    arrays[4] = [np.abs(v) + 1 for v in arrays[4]]
    step_size, bc2 = [0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]
    kw = dict(
        lr=0.1,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.01,
        decoupled_weight_decay=True,
        maximize=False,
    )
    each = [[a.copy() for a in kind] for kind in arrays]
    for i in range(len(shapes)):
        _core.adam_step(
            *(kind[i] for kind in each), **kw, step_size=step_size[i], bias_correction2_sqrt=bc2[i]
        )
    _core.adam_step(*arrays, **kw, step_size=step_size, bias_correction2_sqrt=bc2)
    for ours, theirs in zip(arrays, each):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)


def _adam_lists(dtype, n=3):
    p, g, m, v = ([np.ones(4, dtype) for _ in range(n)] for _ in range(4))
    return p, g, m, v


ADAM_KW = dict(
    lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False, maximize=False
)


def test_multi_tensor_lists_of_other_lengths_are_rejected(dtype):
    p, g, m, v = _adam_lists(dtype)
    with pytest.raises(ValueError, match=r"grad must have one array per param array \(3\), got 2"):
        _core.adam_step(p, g[:2], m, v, None, **ADAM_KW, step_size=0.1, bias_correction2_sqrt=1.0)
    with pytest.raises(ValueError, match=r"max_exp_avg_sq must have one array per param array \(3\), got 4"):
        _core.adam_step(p, g, m, v, v + [v[0].copy()], **ADAM_KW, step_size=0.1, bias_correction2_sqrt=1.0)
    with pytest.raises(ValueError, match=r"step_size must have one value per param array \(3\), got 2"):
        _core.adam_step(p, g, m, v, None, **ADAM_KW, step_size=[0.1, 0.1], bias_correction2_sqrt=1.0)
    with pytest.raises(ValueError, match=r"first_step must have one value per param array \(3\), got 1"):
        _core.sgd_step(
            p,
            g,
            None,
            lr=0.1,
            momentum=0.0,
            dampening=0.0,
            nesterov=False,
            weight_decay=0.0,
            maximize=False,
            first_step=[True],
        )
    with pytest.raises(TypeError, match="sum must be a list of numpy.ndarray, got dict"):
        _core.adagrad_step(p, g, {}, clr=0.1, eps=1e-10, weight_decay=0.0, maximize=False)
    assert all((a == 1).all() for a in p + m + v)  # a rejected call writes nothing


def test_multi_tensor_arrays_unlike_their_param_are_rejected(dtype):
    p, g, m, v = _adam_lists(dtype)
    other = np.float32 if dtype == np.float64 else np.float64
    m[2] = np.ones(5, dtype)
    with pytest.raises(ValueError, match=r"exp_avg\[2\] must have shape \(4,\), got \(5,\)"):
        _core.adam_step(p, g, m, v, None, **ADAM_KW, step_size=0.1, bias_correction2_sqrt=1.0)
    p[1] = np.ones(4, other)
    with pytest.raises(TypeError, match=rf"param\[1\] must have dtype {np.dtype(dtype).name}, got"):
        _core.adam_step(p, g, m, v, None, **ADAM_KW, step_size=0.1, bias_correction2_sqrt=1.0)


def test_multi_tensor_overlaps_between_tensors_are_rejected(dtype):
    p, g, m, v = _adam_lists(dtype)
    before = [a.copy() for a in p + m + v]
    with pytest.raises(ValueError, match=r"param\[0\] and param\[2\] share memory"):
        _core.adam_step(
            [p[0], p[1], p[0]], g, m, v, None, **ADAM_KW, step_size=0.1, bias_correction2_sqrt=1.0
        )
    buf = np.zeros(8, dtype)
    with pytest.raises(ValueError, match=r"exp_avg\[1\] and exp_avg_sq\[2\] share memory"):
        _core.adam_step(
            p,
            g,
            [m[0], buf[:4], m[2]],
            [v[0], v[1], buf[2:6]],
            None,
            **ADAM_KW,
            step_size=0.1,
            bias_correction2_sqrt=1.0,
        )
    with pytest.raises(ValueError, match=r"grad\[1\] and exp_avg\[0\] share memory"):
        _core.adam_step(
            p, [g[0], m[0], g[2]], m, v, None, **ADAM_KW, step_size=0.1, bias_correction2_sqrt=1.0
        )
    _core.adam_step(
        p, [g[0]] * 3, m, v, None, **ADAM_KW, step_size=0.1, bias_correction2_sqrt=1.0
    )  # reads may share
    assert not all(np.array_equal(a, b) for a, b in zip(p + m + v, before))


def test_an_empty_group_is_a_no_op():
    _core.adam_step([], [], [], [], None, **ADAM_KW, step_size=[], bias_correction2_sqrt=[])
    with pytest.raises(ValueError, match=r"grad must have one array per param array \(0\), got 1"):
        _core.sgd_step(
            [],
            [np.ones(1)],
            None,
            lr=0.1,
            momentum=0.0,
            dampening=0.0,
            nesterov=False,
            weight_decay=0.0,
            maximize=False,
            first_step=False,
        )


def test_an_overlap_behind_a_nested_read_is_found(dtype):
    # grad[1] lies inside grad[0] (reads may share memory); exp_avg[2] lies inside grad[0] after
    # grad[1] ends: the check must compare it with grad[0], not only with its neighbour.
    buf = np.zeros(8, dtype)
    p = [np.ones(8, dtype), np.ones(2, dtype), np.ones(2, dtype)]
    g = [buf, buf[1:3], np.ones(2, dtype)]
    m, v = [np.ones(8, dtype), np.ones(2, dtype), buf[5:7]], [np.ones_like(a) for a in p]
    with pytest.raises(ValueError, match=r"grad\[0\] and exp_avg\[2\] share memory"):
        _core.adam_step(p, g, m, v, None, **ADAM_KW, step_size=0.1, bias_correction2_sqrt=1.0)
    m[2] = np.zeros(2, dtype)
    _core.adam_step(p, g, m, v, None, **ADAM_KW, step_size=0.1, bias_correction2_sqrt=1.0)
