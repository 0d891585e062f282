"""Batch norm, layer norm and dropout: NumPy twins, gradient checks, running statistics,
PyTorch parity, degenerate input, and the course's claim that batch norm eases training."""

import numpy as np
import pytest

import saddlepoint as sp

import numpy_reference as ref
from gradcheck import assert_gradient_close, numerical_gradient

try:
    import torch
except ImportError:
    torch = None

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.mark.parametrize("shape", [(2, 3), (16, 5), (7, 4, 6), (2048, 300)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_numpy_in_training(dtype, rng, shape, affine):
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    layer = sp.BatchNorm1d(shape[1], affine=affine, dtype=dtype)
    if affine:
        layer.weight.data[:] = rng.uniform(0.5, 1.5, shape[1])
        layer.bias.data[:] = rng.standard_normal(shape[1])
    gamma = layer.weight.data.astype(np.float64) if affine else 1.0
    beta = layer.bias.data.astype(np.float64) if affine else 0.0
    y = layer(x)
    expected, _, _ = ref.batch_norm_forward(x, gamma, beta, 1e-5)
    np.testing.assert_allclose(y, expected, **TOL[dtype])
    dx = layer.backward(dy)
    edx, edgamma, edbeta = ref.batch_norm_backward(x, dy, gamma, 1e-5)
    tol = dict(rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * np.sqrt(x.size))
    np.testing.assert_allclose(dx, edx, **tol)
    if affine:
        np.testing.assert_allclose(layer.weight.grad, edgamma, **tol)
        np.testing.assert_allclose(layer.bias.grad, edbeta, **tol)


def test_batch_norm_eval_uses_running_statistics(dtype, rng):
    layer = sp.BatchNorm1d(4, dtype=dtype)
    layer.running_mean[:] = rng.standard_normal(4)
    layer.running_var[:] = rng.uniform(0.5, 2, 4)
    layer.weight.data[:] = rng.uniform(0.5, 1.5, 4)
    layer.eval()
    x, dy = rng.standard_normal((1, 4)).astype(dtype), rng.standard_normal((1, 4)).astype(dtype)
    y = layer(x)  # a batch of one is fine in eval mode
    mean, var = layer.running_mean.astype(np.float64), layer.running_var.astype(np.float64)
    expected, _, _ = ref.batch_norm_forward(x, layer.weight.data, layer.bias.data, 1e-5, mean, var)
    np.testing.assert_allclose(y, expected, **TOL[dtype])
    edx, _, _ = ref.batch_norm_backward(x, dy, layer.weight.data, 1e-5, batch_stats=False, mean=mean, var=var)
    np.testing.assert_allclose(layer.backward(dy), edx, **TOL[dtype])


def test_running_statistics_are_the_closed_form_moving_averages(rng):
    layer = sp.BatchNorm1d(3, momentum=0.1, dtype=np.float64)
    batches = [rng.standard_normal((8, 3)) * (i + 1) + i for i in range(5)]
    mean, var = np.zeros(3), np.ones(3)
    for b in batches:
        layer(b)
        mean = 0.9 * mean + 0.1 * b.mean(axis=0)
        var = 0.9 * var + 0.1 * b.var(axis=0, ddof=1)
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, var, rtol=1e-12)
    assert int(layer.num_batches_tracked) == 5


def test_momentum_none_is_the_cumulative_average(rng):
    layer = sp.BatchNorm1d(2, momentum=None, dtype=np.float64)
    batches = [rng.standard_normal((6, 2)) + i for i in range(4)]
    for b in batches:
        layer(b)
    np.testing.assert_allclose(
        layer.running_mean, np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-12
    )
    np.testing.assert_allclose(
        layer.running_var, np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0), rtol=1e-12
    )


def test_state_dict_holds_running_statistics_and_affine_parameters():
    model = sp.Sequential(sp.Dense(3, 4, rng=0), sp.BatchNorm1d(4))
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    model(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32))
    other = sp.Sequential(sp.Dense(3, 4, rng=1), sp.BatchNorm1d(4))
    other.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(other[1].running_mean, model[1].running_mean)
    assert int(other[1].num_batches_tracked) == 1


def check_layer_gradients(layer, x, rng, forward=None):
    forward = forward or layer.forward
    w = rng.standard_normal(forward(x).shape)

    def objective():
        return float(np.sum(w * forward(x)))

    layer.zero_grad()
    forward(x)
    grad_x = layer.backward(w)
    assert_gradient_close(grad_x, numerical_gradient(objective, x), rtol=1e-5, atol=1e-7)
    for _, p in layer.named_parameters():
        assert_gradient_close(p.grad, numerical_gradient(objective, p.data), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_batch_norm_gradcheck(rng, shape):
    layer = sp.BatchNorm1d(3, dtype=np.float64)
    layer.weight.data[:] = rng.uniform(0.5, 1.5, 3)
    layer.bias.data[:] = rng.standard_normal(3)
    check_layer_gradients(layer, rng.standard_normal(shape), rng)


def test_batch_norm_eval_gradcheck(rng):
    layer = sp.BatchNorm1d(3, dtype=np.float64)
    layer.running_var[:] = [0.5, 1.0, 2.0]
    layer.eval()
    check_layer_gradients(layer, rng.standard_normal((4, 3)), rng)


@pytest.mark.parametrize("normalized_shape,shape", [(5, (4, 5)), ((3, 4), (2, 3, 4))])
def test_layer_norm_gradcheck(rng, normalized_shape, shape):
    layer = sp.LayerNorm(normalized_shape, dtype=np.float64)
    layer.weight.data[:] = rng.uniform(0.5, 1.5, layer.weight.shape)
    layer.bias.data[:] = rng.standard_normal(layer.bias.shape)
    check_layer_gradients(layer, rng.standard_normal(shape), rng)


def test_dropout_gradcheck_with_a_fixed_mask(rng):
    layer = sp.Dropout(0.4)
    check_layer_gradients(
        layer, rng.standard_normal((5, 7)), rng, forward=lambda x: layer.forward_with_seed(x, 1234)
    )


@pytest.mark.parametrize(
    "shape,normalized_shape", [((3, 8), (8,)), ((4, 2, 6), (2, 6)), ((700, 512), (512,))]
)
def test_layer_norm_matches_numpy(dtype, rng, shape, normalized_shape):
    layer = sp.LayerNorm(normalized_shape, dtype=dtype)
    layer.weight.data[:] = rng.uniform(0.5, 1.5, normalized_shape)
    layer.bias.data[:] = rng.standard_normal(normalized_shape)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    k = len(normalized_shape)
    gamma, beta = layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
    np.testing.assert_allclose(layer(x), ref.layer_norm_forward(x, gamma, beta, 1e-5, k), **TOL[dtype])
    edx, edw, edb = ref.layer_norm_backward(x, dy, gamma, 1e-5, k)
    tol = dict(rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * np.sqrt(x.size))
    np.testing.assert_allclose(layer.backward(dy), edx, **tol)
    np.testing.assert_allclose(layer.weight.grad, edw, **tol)
    np.testing.assert_allclose(layer.bias.grad, edb, **tol)


def test_dropout_is_inverted_seeded_and_identity_in_eval(dtype):
    x = np.ones((400, 500), dtype)
    layer = sp.Dropout(0.25, rng=0)
    y = layer(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)  # same mask, same scale
    assert not np.array_equal(layer(x), y)  # a fresh mask per call
    np.testing.assert_array_equal(sp.Dropout(0.25, rng=0)(x), y)  # the same seed, the same masks
    layer.eval()
    assert layer(x) is x and layer.backward(x) is x
    assert sp.Dropout(0.0)(x) is x


def test_dropout_mask_does_not_depend_on_the_thread_count():
    x = np.ones(1_000_000, np.float32)
    before = sp.get_num_threads()
    masks = []
    for threads in (1, 2):
        sp.set_num_threads(threads)
        masks.append(sp.Dropout(0.5).forward_with_seed(x, 99).tobytes())
    sp.set_num_threads(before)
    assert masks[0] == masks[1]


def test_degenerate_input_stays_finite(rng):
    layer = sp.BatchNorm1d(3)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    x[:, 1] = 7.0  # a constant feature: variance 0
    x[:, 2] = 1e8 + rng.standard_normal(16).astype(np.float32) * 1e3  # large offset
    y = layer(x)
    dx = layer.backward(np.ones_like(y))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    np.testing.assert_allclose(y[:, 1], 0.0)
    np.testing.assert_allclose(y[:, 2].std(), 1.0, rtol=1e-2)
    huge = (np.full((4, 3), 1e30) * rng.choice([-1, 1], (4, 3))).astype(np.float32)
    assert np.all(np.isfinite(layer(huge)))
    ln = sp.LayerNorm(3)
    assert np.all(np.isfinite(ln(np.full((2, 3), 5.0, np.float32))))


def test_batch_of_one_in_training_is_a_clear_error():
    layer = sp.BatchNorm1d(4)
    before = layer.running_mean.copy()
    with pytest.raises(
        ValueError, match=r"more than 1 value per channel in training, got input of shape \(1, 4\)"
    ):
        layer(np.ones((1, 4), np.float32))
    np.testing.assert_array_equal(layer.running_mean, before)
    assert int(layer.num_batches_tracked) == 0


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: sp.BatchNorm1d(0), "num_features must be a positive integer, got 0"),
        (lambda: sp.BatchNorm1d(3, momentum=1.5), r"momentum must be in \[0, 1\] or None, got 1.5"),
        (lambda: sp.BatchNorm1d(3, eps=0), "eps must be a finite number > 0, got 0"),
        (lambda: sp.Dropout(1.0), r"p must be in \[0, 1\), got 1.0"),
        (lambda: sp.LayerNorm(()), "normalized_shape must not be empty"),
    ],
)
def test_constructor_arguments_are_validated(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_input_shapes_name_the_expected_shape():
    with pytest.raises(
        ValueError, match=r"x must have shape \(batch, 4\) or \(batch, 4, length\), got \(2, 5\)"
    ):
        sp.BatchNorm1d(4)(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\), got \(2, 5\)"):
        sp.LayerNorm(4)(np.ones((2, 5), np.float32))


def test_batch_norm_trains_where_the_plain_network_stalls():
    """The course: batch normalization changes the error surface so that a larger learning
    rate works. A 4-layer sigmoid network on the digits at lr = 1: without batch norm the loss
    stays near log(10) = 2.30; with it, it falls below 0.3 in 5 epochs."""
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)

    def final_loss(batch_norm):
        rng, layers, width = np.random.default_rng(0), [], 64
        for _ in range(4):
            layers.append(sp.Dense(width, 64, rng=rng))
            if batch_norm:
                layers.append(sp.BatchNorm1d(64))
            layers.append(sp.Sigmoid())
        model = sp.Sequential(*layers, sp.Dense(64, 10, rng=rng))
        optimizer = sp.SGD(model.parameters(), lr=1.0)
        trainer = sp.Trainer(model, sp.CrossEntropyLoss(), optimizer, batch_size=64, seed=0, verbose=0)
        return trainer.fit(X, y, epochs=5)["loss"][-1]

    plain, normalized = final_loss(False), final_loss(True)
    assert plain > 2.2 and normalized < 0.3, (plain, normalized)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.parametrize("shape", [(32, 6), (8, 6, 5)])
def test_batch_norm_matches_pytorch(rng, shape):
    ours = sp.BatchNorm1d(6, momentum=0.2, dtype=np.float64)
    theirs = torch.nn.BatchNorm1d(6, momentum=0.2, dtype=torch.float64)
    for step in range(3):
        x = rng.standard_normal(shape) * 2 + step
        dy = rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
    ours.eval(), theirs.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_layer_norm_matches_pytorch(rng):
    ours, theirs = sp.LayerNorm((3, 4), dtype=np.float64), torch.nn.LayerNorm((3, 4), dtype=torch.float64)
    x, dy = rng.standard_normal((5, 3, 4)), rng.standard_normal((5, 3, 4))
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ours(x), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-9)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_kernel_matches_its_numpy_twin(dtype, rng, p):
    x = rng.standard_normal((300, 1000)).astype(dtype)
    layer = sp.Dropout(p)
    y = layer.forward_with_seed(x, 2024)
    mask = ref.dropout_mask(x.size, p, 2024, dtype).reshape(x.shape)
    np.testing.assert_array_equal(layer._mask, mask)
    np.testing.assert_array_equal(y, x * mask)


def test_normalization_is_bit_identical_with_1_and_2_threads(rng):
    x = rng.standard_normal((1024, 512)).astype(np.float32) * 3 + 1
    dy = rng.standard_normal((1024, 512)).astype(np.float32)
    before = sp.get_num_threads()
    results = []
    for threads in (1, 2):
        sp.set_num_threads(threads)
        bn, ln = sp.BatchNorm1d(512), sp.LayerNorm(512)
        outputs = [
            bn(x),
            bn.backward(dy),
            bn.weight.grad,
            bn.running_var,
            ln(x),
            ln.backward(dy),
            ln.weight.grad,
        ]
        results.append(b"".join(a.tobytes() for a in outputs))
    sp.set_num_threads(before)
    assert results[0] == results[1]
