"""Float64 central-difference gradient checks of every layer and loss."""

import numpy as np
import pytest

from saddlepoint import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dense,
    HardSigmoid,
    Identity,
    L1Loss,
    LeakyReLU,
    MSELoss,
    ReLU,
    Sigmoid,
    Tanh,
    mlp,
)

from gradcheck import assert_gradient_close, numerical_gradient


def away_from_kinks(x, kinks, margin=1e-3):
    """Moves entries off the points where a piecewise function has no derivative."""
    for k in kinks:
        close = np.abs(x - k) < margin
        x[close] = k + 2 * margin
    return x


def check_layer(layer, x, rng):
    """Checks d(sum(w * layer(x)))/dx and /dparams against central differences."""
    w = rng.standard_normal(layer.forward(x).shape)

    def objective():
        return float(np.sum(w * layer.forward(x)))

    layer.zero_grad()
    layer.forward(x)
    grad_x = layer.backward(w)
    assert_gradient_close(grad_x, numerical_gradient(objective, x))
    for name, p in layer.named_parameters():
        assert_gradient_close(p.grad, numerical_gradient(objective, p.data), rtol=1e-6, atol=1e-8)


def test_dense_gradients(rng):
    layer = Dense(5, 4, dtype=np.float64, rng=rng)
    check_layer(layer, rng.standard_normal((6, 5)), rng)


def test_dense_without_bias_gradients(rng):
    layer = Dense(3, 2, bias=False, dtype=np.float64, rng=rng)
    assert layer.bias is None
    check_layer(layer, rng.standard_normal((4, 3)), rng)


@pytest.mark.parametrize(
    "layer_type,kinks",
    [
        (ReLU, [0.0]),
        (LeakyReLU, [0.0]),
        (Sigmoid, []),
        (HardSigmoid, [-3.0, 3.0]),
        (Tanh, []),
        (Identity, []),
    ],
)
def test_activation_gradients(rng, layer_type, kinks):
    x = away_from_kinks(rng.standard_normal((5, 6)) * 4, kinks)
    check_layer(layer_type(), x, rng)


def test_network_gradients(rng):
    model = mlp([4, 6, 5, 3], "tanh", dtype=np.float64, rng=rng)
    model.requires_grad_input()  # a Sequential skips the gradient of its data unless asked
    check_layer(model, rng.standard_normal((7, 4)), rng)


def check_loss(loss_fn, x, target):
    def objective():
        return loss_fn(x, target)

    objective()
    assert_gradient_close(loss_fn.backward(), numerical_gradient(objective, x))


def test_mse_gradient(rng):
    check_loss(MSELoss(), rng.standard_normal((5, 3)), rng.standard_normal((5, 3)))


def test_l1_gradient(rng):
    x = rng.standard_normal((5, 3))
    target = x + away_from_kinks(rng.standard_normal((5, 3)), [0.0])
    check_loss(L1Loss(), x, target)


def test_bce_with_logits_gradient(rng):
    check_loss(BCEWithLogitsLoss(), rng.standard_normal((6, 2)) * 3, rng.uniform(0, 1, (6, 2)))


@pytest.mark.parametrize("weight", [None, [0.5, 2.0, 1.0, 3.0]])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_gradient_with_labels(rng, weight, smoothing):
    loss = CrossEntropyLoss(weight=weight, label_smoothing=smoothing)
    check_loss(loss, rng.standard_normal((6, 4)) * 2, rng.integers(0, 4, 6))


def test_cross_entropy_gradient_with_probabilities(rng):
    loss = CrossEntropyLoss(weight=[1.0, 2.0, 0.5], label_smoothing=0.1)
    check_loss(loss, rng.standard_normal((5, 3)), rng.dirichlet(np.ones(3), 5))
