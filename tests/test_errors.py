"""Bad input: a clear exception naming the argument, expected and actual; nothing changes."""

import numpy as np
import pytest

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
    with pytest.raises(ValueError, match=r"weight must have shape \(out_features, 3\) to match x's 3 features, got \(4, 5\)"):
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
    with pytest.raises(ValueError, match="overlaps"):
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
    with pytest.raises(TypeError, match=r"x must have dtype float32 like the layer's parameters, got float64"):
        sp.Dense(3, 2)(np.ones((1, 3)))


def test_constructor_arguments_are_validated():
    with pytest.raises(ValueError, match="in_features must be a positive integer, got 0"):
        sp.Dense(0, 3)
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got float16"):
        sp.Dense(2, 3, dtype=np.float16)
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, got -0.1"):
        sp.SGD(sp.Dense(2, 3).parameters(), lr=-0.1)
    with pytest.raises(ValueError, match="n must be a positive number of threads, got -1"):
        sp.set_num_threads(-1)
    with pytest.raises(ValueError, match="num_threads: must be at least 1, got 0"):
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
