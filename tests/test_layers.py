"""Modules: names, state dicts, modes, initialization, NumPy layers, and training."""

import numpy as np
import pytest

import saddlepoint as sp


class NumpyScale(sp.Module):
    """A layer in plain NumPy: y = x * scale, with a trainable scale per feature."""

    def __init__(self, features):
        self.scale = sp.Parameter(np.ones(features, np.float32))

    def forward(self, x):
        self._x = x
        return x * self.scale.data

    def backward(self, grad_output):
        self.scale.grad += (grad_output * self._x).sum(axis=0)
        return grad_output * self.scale.data


class NumpySquare:
    """Not a Module at all: just forward and backward."""

    def forward(self, x):
        self._x = x
        return x * x

    def backward(self, grad_output):
        return 2 * self._x * grad_output


def test_state_dict_uses_pytorch_names_and_round_trips():
    model = sp.mlp([4, 8, 3], rng=0)
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert state["0.weight"].shape == (8, 4)  # (out, in), as torch.nn.Linear
    other = sp.mlp([4, 8, 3], rng=1)
    other.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(other(x), model(x))
    state["0.weight"][:] = 0  # a copy: the model is unchanged
    assert np.any(model[0].weight.data)


def test_initialization_is_pytorch_default_and_seeded():
    layer = sp.Dense(100, 50, rng=np.random.default_rng(3))
    bound = 1 / np.sqrt(100)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert layer.weight.data.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)  # uniform's std
    again = sp.Dense(100, 50, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(layer.weight.data, again.weight.data)


def test_numpy_layers_mix_with_rust_layers():
    rng = np.random.default_rng(0)
    model = sp.Sequential(sp.Dense(3, 4, rng=rng), NumpyScale(4), NumpySquare(), sp.Dense(4, 2, rng=rng))
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.scale", "3.weight", "3.bias"]
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    loss_fn, opt = sp.MSELoss(), sp.SGD(model.parameters(), lr=0.05)
    first = loss_fn(model(x), y)
    for _ in range(100):
        loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
    assert loss_fn(model(x), y) < 0.5 * first
    assert not np.all(model[1].scale.data == 1)  # the NumPy layer's parameter trained too


def test_train_and_eval_reach_every_layer():
    model = sp.mlp([2, 3, 3, 1], rng=0)
    model.eval()
    assert not model.training and all(not layer.training for layer in model)
    model.train()
    assert all(layer.training for layer in model)


def test_zero_grad_and_accumulation():
    layer = sp.Dense(3, 2, rng=0)
    x = np.ones((4, 3), np.float32)
    layer(x)
    layer.backward(np.ones((4, 2), np.float32))
    once = layer.weight.grad.copy()
    layer(x)
    layer.backward(np.ones((4, 2), np.float32))
    np.testing.assert_allclose(layer.weight.grad, 2 * once)
    sp.SGD(layer.parameters(), lr=0.1).zero_grad()
    assert not layer.weight.grad.any()


def test_first_layer_can_skip_the_gradient_of_its_input():
    layer = sp.Dense(3, 2, rng=0)
    assert layer.requires_grad_input(False) is layer
    layer(np.ones((4, 3), np.float32))
    assert layer.backward(np.ones((4, 2), np.float32)) is None
    assert layer.weight.grad.any()


def test_sgd_param_groups_have_their_own_rates():
    a, b = sp.Parameter(np.ones(3)), sp.Parameter(np.ones(3))
    a.grad[:] = 1.0
    b.grad[:] = 1.0
    opt = sp.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.5)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


@pytest.mark.parametrize("activation", [sp.Sigmoid, sp.Tanh, sp.ReLU])
def test_a_network_learns_xor(activation):
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float64)
    y = np.array([0, 1, 1, 0])
    model = sp.Sequential(
        sp.Dense(2, 16, dtype=np.float64, rng=0), activation(), sp.Dense(16, 2, dtype=np.float64, rng=1)
    )
    loss_fn, opt = sp.CrossEntropyLoss(), sp.SGD(model.parameters(), lr=0.5)
    for _ in range(2000):
        loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
    np.testing.assert_array_equal(model(x).argmax(axis=1), y)


def test_zero_grad_is_deferred_but_exact():
    layer = sp.Dense(3, 2, rng=0)
    x, g = np.ones((4, 3), np.float32), np.ones((4, 2), np.float32)
    layer(x)
    layer.backward(g)
    once = layer.weight.grad.copy()
    layer.zero_grad()
    assert not layer.weight.grad.any()  # reading materializes the zeros
    layer.zero_grad()
    layer(x)
    layer.backward(g)  # overwrites instead of zero-fill + accumulate
    np.testing.assert_array_equal(layer.weight.grad, once)
    layer.bias.zero_grad()  # only one of the two zeroed: both still come out right
    layer(x)
    layer.backward(g)
    np.testing.assert_array_equal(layer.weight.grad, 2 * once)
    np.testing.assert_array_equal(layer.bias.grad, np.full(2, 4.0, np.float32))
    with pytest.raises(ValueError, match=r"grad must have shape \(2, 3\) and dtype float32"):
        layer.weight.grad = np.zeros(3)
