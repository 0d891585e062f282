"""BatchNorm2d and Flatten, the two CNN layers built on existing kernels: NumPy twins, float64
gradient checks, R-operator pairs, state dicts, bad input and PyTorch parity (live)."""

import numpy as np
import pytest
from test_gradcheck import check_layer as gradcheck
from test_rop import check_layer as check_r_operator

import saddlepoint as sp

import numpy_reference as ref

try:
    import torch
except ImportError:
    torch = None

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
SHAPES = [(2, 3, 4, 5), (1, 3, 1, 2), (5, 3, 7, 1), (16, 3, 8, 8)]


# --- BatchNorm2d -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_2d_matches_numpy_in_training(dtype, rng, shape, affine):
    layer = sp.BatchNorm2d(3, affine=affine, dtype=dtype)
    gamma, beta = (rng.uniform(0.5, 2, 3), rng.standard_normal(3)) if affine else (np.ones(3), np.zeros(3))
    if affine:
        layer.weight.data[:], layer.bias.data[:] = gamma, beta
    x, dy = (rng.standard_normal(shape) * 3 + 1).astype(dtype), rng.standard_normal(shape).astype(dtype)
    y = layer(x)
    expected, mean, var = ref.batch_norm_forward(x, gamma, beta, 1e-5)
    assert y.shape == shape and y.dtype == dtype
    np.testing.assert_allclose(y, expected, **TOL[dtype])
    count = shape[0] * shape[2] * shape[3]
    np.testing.assert_allclose(layer.running_mean, 0.1 * mean, **TOL[dtype])
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * var * count / (count - 1), **TOL[dtype])
    dx, dgamma, dbeta = ref.batch_norm_backward(x, dy, gamma, 1e-5)
    np.testing.assert_allclose(layer.backward(dy), dx, **TOL[dtype])
    if affine:
        np.testing.assert_allclose(layer.weight.grad, dgamma, **TOL[dtype])
        np.testing.assert_allclose(layer.bias.grad, dbeta, **TOL[dtype])


def test_batch_norm_2d_eval_uses_running_statistics(dtype, rng):
    layer = sp.BatchNorm2d(3, dtype=dtype)
    layer.running_mean[:], layer.running_var[:] = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    layer.eval()
    x = rng.standard_normal((4, 3, 5, 2)).astype(dtype)
    expected, _, _ = ref.batch_norm_forward(
        x, np.ones(3), np.zeros(3), 1e-5, layer.running_mean, layer.running_var
    )
    np.testing.assert_allclose(layer(x), expected, **TOL[dtype])


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_2d_gradcheck(training, rng):
    layer = sp.BatchNorm2d(2, dtype=np.float64)
    layer(rng.standard_normal((3, 2, 4, 3)) * 2 + 1)  # running statistics away from (0, 1)
    layer.weight.data[:], layer.bias.data[:] = rng.uniform(0.5, 2, 2), rng.standard_normal(2)
    layer.train(training)
    gradcheck(layer, rng.standard_normal((3, 2, 4, 3)), rng)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_batch_norm_2d_r_operator(training, affine, rng):
    layer = sp.BatchNorm2d(3, affine=affine, dtype=np.float64)
    layer(rng.standard_normal((4, 3, 3, 2)) * 2 + 1)
    if affine:
        layer.weight.data[:], layer.bias.data[:] = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    layer.train(training)
    check_r_operator(layer, rng.standard_normal((4, 3, 3, 2)), rng=rng)


def test_batch_norm_2d_state_dict_has_pytorch_names():
    assert list(sp.BatchNorm2d(4).state_dict()) == [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]


def test_batch_norm_2d_is_batch_norm_1d_on_the_flattened_positions(rng):
    """The same statistics and gradients as BatchNorm1d on the (N, C, H·W) view."""
    x, dy = rng.standard_normal((6, 4, 3, 5)), rng.standard_normal((6, 4, 3, 5))
    two, one = sp.BatchNorm2d(4, dtype=np.float64), sp.BatchNorm1d(4, dtype=np.float64)
    np.testing.assert_array_equal(two(x), one(x.reshape(6, 4, 15)).reshape(x.shape))
    np.testing.assert_array_equal(two.backward(dy), one.backward(dy.reshape(6, 4, 15)).reshape(x.shape))
    np.testing.assert_array_equal(two.running_var, one.running_var)


@pytest.mark.parametrize(
    "shape,message",
    [
        ((4, 3, 5), r"x must have shape \(batch, 3, height, width\), got \(4, 3, 5\)"),
        ((4, 2, 5, 5), r"x must have shape \(batch, 3, height, width\), got \(4, 2, 5, 5\)"),
        ((1, 3, 1, 1), "BatchNorm2d needs more than 1 value per channel in training"),
    ],
)
def test_batch_norm_2d_bad_input_is_a_clear_error_and_changes_nothing(shape, message):
    layer = sp.BatchNorm2d(3)
    with pytest.raises(ValueError, match=message):
        layer(np.ones(shape, np.float32))
    assert int(layer.num_batches_tracked) == 0 and not layer.running_mean.any()


def test_batch_norm_2d_handles_an_empty_batch_in_eval():
    y = sp.BatchNorm2d(3).eval()(np.ones((0, 3, 4, 4), np.float32))
    assert y.shape == (0, 3, 4, 4)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_batch_norm_2d_matches_pytorch(rng):
    ours = sp.BatchNorm2d(5, momentum=0.2, dtype=np.float64)
    theirs = torch.nn.BatchNorm2d(5, momentum=0.2, dtype=torch.float64)
    for step in range(3):
        x, dy = rng.standard_normal((4, 5, 6, 3)) * 2 + step, rng.standard_normal((4, 5, 6, 3))
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)


# --- Flatten ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,start,end,expected",
    [
        ((2, 3, 4, 5), 1, -1, (2, 60)),
        ((2, 3, 4, 5), 0, -1, (120,)),
        ((2, 3, 4, 5), 1, 2, (2, 12, 5)),
        ((2, 3, 4, 5), -2, -1, (2, 3, 20)),
        ((0, 3, 4), 1, -1, (0, 12)),
        ((7, 3), 1, -1, (7, 3)),
    ],
)
def test_flatten_matches_numpy_reshape_and_back(shape, start, end, expected, rng):
    x = rng.standard_normal(shape)
    layer = sp.Flatten(start, end)
    y = layer(x)
    assert y.shape == expected
    np.testing.assert_array_equal(y, x.reshape(expected))
    assert x.size == 0 or np.shares_memory(y, x)  # a view, not a copy
    np.testing.assert_array_equal(layer.backward(y * 2), x * 2)


def test_flatten_gradcheck_and_r_operator(rng):
    gradcheck(sp.Flatten(), rng.standard_normal((3, 2, 2, 3)), rng)
    check_r_operator(sp.Flatten(), rng.standard_normal((3, 2, 2, 3)), rng=rng)
    check_r_operator(sp.Flatten(), rng.standard_normal((3, 2, 2, 3)), with_rx=False, rng=rng)


def test_flatten_bad_dimensions_are_clear_errors():
    with pytest.raises(
        ValueError, match=r"Flatten\(start_dim=1, end_dim=-1\) does not fit an input of shape \(5,\)"
    ):
        sp.Flatten()(np.ones(5))
    with pytest.raises(ValueError, match="start_dim must not come after end_dim"):
        sp.Flatten(2, 1)(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="start_dim must be an integer"):
        sp.Flatten(1.5)
    layer = sp.Flatten()
    layer(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(2, 12\)"):
        layer.backward(np.ones((2, 3, 4)))


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_flatten_matches_pytorch(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    for start, end in [(1, -1), (0, 2), (2, 3)]:
        expected = torch.nn.Flatten(start, end)(torch.tensor(x)).numpy()
        np.testing.assert_array_equal(sp.Flatten(start, end)(x), expected)


# --- Unflatten --------------------------------------------------------------------------------------


def test_unflatten_turns_rows_into_images_and_back(rng):
    x = rng.standard_normal((5, 12))
    layer = sp.Unflatten(1, (3, 2, 2))
    y = layer(x)
    np.testing.assert_array_equal(y, x.reshape(5, 3, 2, 2))
    assert np.shares_memory(y, x)
    np.testing.assert_array_equal(layer.backward(y), x)
    np.testing.assert_array_equal(sp.Unflatten(-1, (2, 6))(x), x.reshape(5, 2, 6))
    gradcheck(sp.Unflatten(1, (3, 4)), rng.standard_normal((2, 12)), rng)
    check_r_operator(sp.Unflatten(1, (2, 2, 3)), rng.standard_normal((3, 12)), rng=rng)


def test_unflatten_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match=r"x must have 12 = 3·2·2 entries in dimension 1"):
        sp.Unflatten(1, (3, 2, 2))(np.ones((5, 10)))
    with pytest.raises(ValueError, match="unflattened_size must be a non-empty sequence"):
        sp.Unflatten(1, 4)
    with pytest.raises(ValueError, match="unflattened_size must be a positive integer, got 0"):
        sp.Unflatten(1, (0, 4))


def test_a_leading_reshape_passes_the_no_input_gradient_hint_on(rng):
    """Sequential(Unflatten, Dense): the Dense layer after the reshape skips its input
    gradient, and backward returns None through the reshape; asked for it, it comes back."""
    model = sp.Sequential(sp.Unflatten(1, (2, 3)), sp.Flatten(), sp.Dense(6, 2, dtype=np.float64, rng=0))
    x = rng.standard_normal((4, 6))
    model(x)
    assert model.backward(np.ones((4, 2))) is None and not model[2]._grad_input
    model.requires_grad_input()
    model(x)
    np.testing.assert_allclose(model.backward(np.ones((4, 2))), np.ones((4, 2)) @ model[2].weight.data)
    after_activation = sp.Sequential(sp.ReLU(), sp.Dense(6, 2, rng=0))
    assert after_activation[1]._grad_input  # an activation is not a reshape: it needs the gradient
