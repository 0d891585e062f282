"""Bad input: a clear exception naming the argument, expected and actual; nothing changes."""

import numpy as np
import pytest
from reliability import core_sweep

import saddlepoint as sp
from saddlepoint import _core, losses


def f32(*shape):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize("bad", [np.int64, np.float16, np.int32])
def test_wrong_dtype_is_a_type_error_naming_the_argument(bad):
    with pytest.raises(TypeError, match=r"x must have dtype float32 or float64, got " + np.dtype(bad).name):
        _core.dense_forward(np.ones((2, 3), bad), f32(4, 3), None, f32(2, 4))
    with pytest.raises(TypeError, match="weight must have dtype float32, got float64"):
        _core.dense_forward(f32(2, 3), np.ones((4, 3)), None, f32(2, 4))
    with pytest.raises(TypeError, match="x must be a numpy.ndarray, got list"):
        _core.activation_forward("relu", [1.0, 2.0], f32(2))


def test_mismatched_shapes_name_the_argument():
    with pytest.raises(
        ValueError, match=r"weight must have shape \(out_features, 3\) to match x's 3 features, got \(4, 5\)"
    ):
        _core.dense_forward(f32(2, 3), f32(4, 5), None, f32(2, 4))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\), got \(5,\)"):
        _core.dense_forward(f32(2, 3), f32(4, 3), f32(5), f32(2, 4))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 4\), got \(2, 5\)"):
        _core.dense_forward(f32(2, 3), f32(4, 3), None, f32(2, 5))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(2, 4\), got \(3, 4\)"):
        _core.dense_backward(f32(2, 3), f32(4, 3), f32(3, 4), None, None, None)
    with pytest.raises(ValueError, match=r"target must have shape \(3, 2\), got \(3,\)"):
        losses.mse_loss(f32(3, 2), f32(3))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3\), got \(2, 4\)"):
        sp.Dense(3, 2)(f32(2, 4))


def test_non_contiguous_output_is_rejected_and_untouched():
    out = np.zeros((4, 8), np.float32)[:, ::2]
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        _core.dense_forward(f32(4, 3), f32(4, 3), None, out)
    assert not out.any()


def test_read_only_and_overlapping_outputs_are_rejected():
    out = f32(2, 4)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        _core.dense_forward(f32(2, 3), f32(4, 3), None, out)
    x = f32(5)
    with pytest.raises(ValueError, match="x and out share memory"):
        _core.activation_forward("relu", x, x)


def test_labels_out_of_range_change_nothing():
    z = np.zeros((3, 4), np.float32)
    grad = np.full_like(z, 7.0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\), got 4 at index 2"):
        _core.cross_entropy(z, np.array([0, 1, 4]), grad)
    with pytest.raises(ValueError, match=r"got -1 at index 0"):
        _core.cross_entropy(z, np.array([-1, 1, 2]), grad)
    assert np.all(grad == 7.0)
    with pytest.raises(ValueError, match="labels"):
        losses.one_hot(np.array([0, 5]), 3)


@pytest.mark.parametrize("fn", [losses.mse_loss, losses.l1_loss, losses.binary_cross_entropy_with_logits])
def test_nan_target_is_rejected(fn):
    with pytest.raises(ValueError, match=r"target: must be finite, got NaN at flat index 1"):
        fn(f32(3), np.array([0.0, np.nan, 1.0], np.float32))


def test_cross_entropy_target_errors():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="target: must be finite"):
        losses.cross_entropy(z, np.array([[0.5, 0.5, 0.0], [np.inf, 0.0, 0.0]]))
    with pytest.raises(TypeError, match=r"target must be integer class labels"):
        losses.cross_entropy(z, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        sp.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\), got \(2,\)"):
        losses.cross_entropy(z, np.array([0, 1]), weight=np.ones(2))


def test_layer_input_of_the_wrong_dtype_names_the_conversion():
    with pytest.raises(
        TypeError, match=r"x must have dtype float32 like the layer's parameters, got float64"
    ):
        sp.Dense(3, 2)(np.ones((1, 3)))


def test_constructor_arguments_are_validated():
    with pytest.raises(ValueError, match="in_features must be a positive integer, got 0"):
        sp.Dense(0, 3)
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got float16"):
        sp.Dense(2, 3, dtype=np.float16)
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, got -0.1"):
        sp.SGD(sp.Dense(2, 3).parameters(), lr=-0.1)
    with pytest.raises(ValueError, match="n must be a number of threads from 1 to .*, got -1"):
        sp.set_num_threads(-1)
    with pytest.raises(ValueError, match="n must be a number of threads from 1 to .*, got 0"):
        sp.set_num_threads(0)
    with pytest.raises(ValueError, match="kind must be one of"):
        _core.activation_forward("swish", f32(2), f32(2))


def test_load_state_dict_that_does_not_fit_changes_nothing():
    model = sp.mlp([3, 4, 2], rng=0)
    before = model.state_dict()
    bad = model.state_dict()
    bad["0.weight"] = np.zeros((4, 3), np.float32)
    bad["2.weight"] = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match=r"state_dict\['2.weight'\] must have shape \(2, 4\), got \(5, 4\)"):
        model.load_state_dict(bad)
    del bad["2.weight"]
    with pytest.raises(KeyError, match="missing \\['2.weight'\\]"):
        model.load_state_dict(bad)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="Dense.backward called before forward"):
        sp.Dense(2, 2).backward(f32(1, 2))
    with pytest.raises(RuntimeError, match="called before the loss"):
        sp.MSELoss().backward()


def _writing_pairs():
    """(function, kwargs, written argument, other array argument) for every _core call that writes."""
    for name, kwargs, written in core_sweep.calls(np.float64, **core_sweep.SIZES):
        for w in written:
            for other, value in kwargs.items():
                if other != w and isinstance(value, np.ndarray):
                    yield pytest.param(name, kwargs, w, other, id=f"{name}-{w}-{other}-{value.dtype}")


WRITING_PAIRS = list(_writing_pairs())


def _views_of_one_buffer(first, second, gap_bytes):
    """``first`` and ``second`` copied into one bytearray, ``second`` starting ``gap_bytes`` after
    ``first`` starts (overlapping when gap_bytes < first.nbytes)."""
    buf = bytearray(gap_bytes + second.nbytes + first.nbytes + 16)
    a = np.frombuffer(buf, first.dtype, first.size, 0).reshape(first.shape)
    b = np.frombuffer(buf, second.dtype, second.size, gap_bytes).reshape(second.shape)
    b[...] = second
    a[...] = first
    return a, b


@pytest.mark.parametrize("name,kwargs,written,other", WRITING_PAIRS)
def test_an_output_overlapping_any_other_argument_is_rejected(name, kwargs, written, other):
    # frombuffer views of one bytearray at different offsets, and an as_strided alias: the
    # borrow tracking of rust-numpy let both through before the per-call check.
    for gap in (8, 0):
        args = core_sweep.fresh(kwargs)
        args[other], args[written] = _views_of_one_buffer(kwargs[other], kwargs[written], gap)
        before = args[written].copy()
        with pytest.raises(
            ValueError, match=rf"\b({other} and {written}|{written} and {other}) share memory"
        ):
            getattr(_core, name)(**args)
        np.testing.assert_array_equal(args[written], before)
    args = core_sweep.fresh(kwargs)
    alias = core_sweep.strided_alias(args[other], kwargs[written])
    if alias is not None:
        args[written] = alias
        with pytest.raises(ValueError, match="share memory"):
            getattr(_core, name)(**args)


@pytest.mark.parametrize("name,kwargs,written,other", WRITING_PAIRS)
def test_adjacent_views_of_one_buffer_give_the_same_results_as_separate_arrays(name, kwargs, written, other):
    separate = core_sweep.fresh(kwargs)
    getattr(_core, name)(**separate)
    adjacent = core_sweep.fresh(kwargs)
    gap = -(-kwargs[other].nbytes // 8) * 8  # right after `other`, aligned
    adjacent[other], adjacent[written] = _views_of_one_buffer(kwargs[other], kwargs[written], gap)
    getattr(_core, name)(**adjacent)
    for key, value in separate.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(adjacent[key], value, err_msg=key)


def test_arguments_that_are_only_read_may_share_memory():
    x = np.linspace(-1, 1, 6)
    grad = np.empty_like(x)
    assert _core.mse_loss(x, x, grad) == 0.0  # the same array as input and target
    buf = bytearray(64)
    a = np.frombuffer(buf, np.float64, 6)
    b = np.frombuffer(buf, np.float64, 6, 8)
    a[:] = x
    expected = np.empty_like(x)
    _core.mse_loss(a.copy(), b.copy(), expected)
    _core.mse_loss(a, b, grad)
    np.testing.assert_array_equal(grad, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_a_misaligned_array_is_named_as_misaligned(dtype):
    n = 5
    misaligned = np.frombuffer(bytearray(n * np.dtype(dtype).itemsize + 1), dtype, n, 1)
    assert misaligned.flags.c_contiguous and not misaligned.flags.aligned
    with pytest.raises(ValueError, match=r"(x|indices) is not aligned.*pass a copy"):
        if dtype == np.int64:
            _core.gather_rows(np.ones((5, 2)), misaligned, np.empty((n, 2)))
        else:
            _core.activation_forward("relu", misaligned, np.empty(n, dtype))
    out = np.frombuffer(bytearray(n * 8 + 1), np.float64, n, 1)
    with pytest.raises(ValueError, match="out is not aligned"):
        _core.activation_forward("relu", np.ones(n), out)
    # The fix the message gives works.
    if dtype != np.int64:
        _core.activation_forward("relu", misaligned.copy(), np.empty(n, dtype))


def test_batch_norm_of_zero_length_or_zero_channels_is_defined():
    y = sp.BatchNorm1d(3).eval()(np.ones((2, 3, 0), np.float32))
    assert y.shape == (2, 3, 0)
    for shape in [(2, 0), (2, 0, 4)]:  # no channels: empty statistics (was a PanicException)
        x = np.ones(shape)
        _core.batch_norm_statistics(x, np.empty(0), np.empty(0))
        _core.batch_norm_forward_train(
            x, None, None, 1e-5, 0.1, np.empty(0), np.empty(0), np.empty(shape), np.empty(0), np.empty(0)
        )
        _core.batch_norm_backward(
            x, x, np.empty(0), np.empty(0), None, True, np.empty(shape), np.empty(0), np.empty(0)
        )
    for shape in [(2, 3, 0), (0, 3, 2), (0, 3)]:  # channels without values: no statistics
        x = np.ones(shape)
        mean, var = np.full(3, 7.0), np.full(3, 7.0)
        with pytest.raises(ValueError, match="x must have at least one value per channel"):
            _core.batch_norm_statistics(x, mean, var)
        running = np.full(3, 7.0), np.full(3, 7.0)
        with pytest.raises(ValueError, match="at least one value per channel"):
            _core.batch_norm_forward_train(x, None, None, 1e-5, 0.1, *running, np.empty(shape), mean, var)
        assert (mean == 7).all() and (var == 7).all() and (running[0] == 7).all() and (running[1] == 7).all()
        grad_weight, grad_bias = np.full(3, 5.0), np.full(3, 5.0)
        _core.batch_norm_backward(
            x, x, np.zeros(3), np.ones(3), None, True, np.empty(shape), grad_weight, grad_bias
        )
        assert (grad_weight == 5).all() and (grad_bias == 5).all()  # sums of nothing add 0


def test_zero_size_inputs_get_empty_results_or_a_value_error():
    _core.softmax(np.ones((3, 0)), np.empty((3, 0)))
    _core.gather_rows(np.ones((4, 0)), np.array([3, 0]), np.empty((2, 0)))
    with pytest.raises(ValueError, match=r"indices: must be in \[0, 4\), got 4"):
        _core.gather_rows(np.ones((4, 0)), np.array([4]), np.empty((1, 0)))
    out = np.full((2, 3), 9.0)
    _core.dense_forward(np.ones((2, 0)), np.ones((3, 0)), np.array([1.0, 2.0, 3.0]), out)
    np.testing.assert_array_equal(out, [[1, 2, 3], [1, 2, 3]])
    with pytest.raises(ValueError, match="input must have at least one element"):
        _core.mse_loss(np.ones(0), np.ones(0), np.ones(0))
    with pytest.raises(ValueError, match="at least one row and one class"):
        _core.cross_entropy(np.ones((0, 3)), np.zeros(0, np.int64), np.ones((0, 3)))
    with pytest.raises(ValueError, match="normalized_shape"):
        _core.layer_norm_forward(
            np.ones((2, 0)), 0, None, None, 1e-5, np.ones((2, 0)), np.ones(2), np.ones(2)
        )


def test_a_panic_in_a_kernel_is_a_runtime_error_not_a_panic_exception():
    with pytest.raises(
        RuntimeError,
        match=r"internal error in saddlepoint._core._panic_in_kernel: boom; "
        r"please report it",
    ):
        _core._panic_in_kernel("boom")
    try:
        _core._panic_in_kernel("caught")
    except Exception:  # PanicException derives from BaseException and would escape this
        pass


@pytest.mark.parametrize(
    "call",
    [
        lambda: _core.clamp_(np.ones(2), 10**400),
        lambda: _core.dropout_forward(np.ones(2), 0.5, -1, np.empty(2), np.empty(2)),
        lambda: _core.dropout_forward(np.ones(2), 0.5, 2**64, np.empty(2), np.empty(2)),
        lambda: _core.layer_norm_forward(
            np.ones((1, 2)), -1, None, None, 1e-5, np.empty((1, 2)), np.empty(1), np.empty(1)
        ),
        lambda: _core.set_num_threads(2**70),
    ],
)
def test_scalars_out_of_range_are_value_errors_not_overflow_errors(call):
    with pytest.raises(ValueError, match=r"must be (a float|an integer in)") as info:
        call()
    assert not isinstance(info.value, OverflowError)
    assert any("while processing" in note for note in info.value.__notes__)
