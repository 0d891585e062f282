"""Flat parameters: a container's parameters and gradients are views of one buffer per dtype,
the parameter vector is a view, optimizers step each group in one call, and copies, state dicts
and dtype changes keep all of it working. Also the container's say over its first layer's input
gradient."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import saddlepoint as sp
import saddlepoint.diagnose as dg
from saddlepoint.nn.parameter import flat_span, pack_parameters
from saddlepoint.training import train_step


def model(dtype=np.float32, seed=0):
    return sp.mlp([5, 7, 4, 3], dtype=dtype, rng=seed)


def data(dtype=np.float32, n=16, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)).astype(dtype), rng.integers(0, 3, n)


def assert_flat(net):
    """Every parameter's data and gradient are adjacent views, in order, of one buffer."""
    params = net.parameters()
    span = flat_span(params)
    assert span is not None
    assert span.start == 0 and span.stop == sum(p.data.size for p in params)
    offset = 0
    for p in params:
        assert np.shares_memory(p.data, span.data) and np.shares_memory(p.grad, span.grad)
        assert p.data.__array_interface__["data"][0] == span.data[offset:].__array_interface__["data"][0]
        offset += p.data.size
    return span


def train(net, optimizer, X, y, steps=5):
    loss_fn = sp.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        losses.append(train_step(net, loss_fn, optimizer, X, y))
    return losses


# --- the buffer ----------------------------------------------------------------------------

def test_a_sequential_holds_its_parameters_in_one_buffer():
    net = model()
    span = assert_flat(net)
    values = [p.data.copy() for p in net.parameters()]
    np.testing.assert_array_equal(span.data, np.concatenate([v.ravel() for v in values]))
    span.data[0] = 42.0  # writing the buffer writes the parameter
    assert net[0].weight.data.flat[0] == 42.0


def test_parameters_to_vector_is_a_view_and_vector_to_parameters_writes_it():
    net = model()
    vector = dg.parameters_to_vector(net)
    assert np.shares_memory(vector, net[0].weight.data) and np.shares_memory(vector, net[-1].bias.data)
    new = np.arange(vector.size, dtype=np.float64)
    dg.vector_to_parameters(new, net)
    np.testing.assert_array_equal(vector, new.astype(np.float32))
    np.testing.assert_array_equal(net[2].bias.data, new[70:74].astype(np.float32))  # after 35 + 7 + 28
    # A subset in order is a view too; out of order, a copy.
    sub = net[2].parameters()
    assert np.shares_memory(dg.parameters_to_vector(sub), net[2].weight.data)
    shuffled = dg.parameters_to_vector(net.parameters()[::-1])
    assert not np.shares_memory(shuffled, vector)


def test_unpacked_parameters_give_a_copy():
    layer = sp.Dense(3, 2, rng=0)  # a layer alone is not packed
    assert flat_span(layer.parameters()) is None
    vector = dg.parameters_to_vector(layer)
    assert not np.shares_memory(vector, layer.weight.data)
    np.testing.assert_array_equal(vector, np.concatenate([layer.weight.data.ravel(), layer.bias.data]))


def test_zero_grad_zeroes_the_whole_buffer_and_backward_writes_it():
    net = model()
    X, y = data()
    loss_fn = sp.CrossEntropyLoss()
    loss_fn(net(X), y)
    net.backward(loss_fn.backward())
    span = assert_flat(net)
    assert span.grad.any()
    net.zero_grad()
    for p in net.parameters():
        assert not p.grad.any()
    assert not span.grad.any()
    assert_flat(net)  # reading the zeros did not rebind anything


def test_setting_a_gradient_copies_into_the_view():
    net = model()
    span = assert_flat(net)
    g = np.full(net[0].weight.shape, 3.0, np.float32)
    net[0].weight.grad = g
    assert net[0].weight.grad is not g
    np.testing.assert_array_equal(span.grad[:g.size], g.ravel())
    g[...] = 0  # the caller's array stays the caller's
    assert net[0].weight.grad.all()
    assert_flat(net)


def test_load_state_dict_copies_into_the_views():
    net, other = model(seed=0), model(seed=1)
    span = assert_flat(net)
    before = span.data
    net.load_state_dict(other.state_dict())
    assert_flat(net)
    assert flat_span(net.parameters()).data.__array_interface__ == before.__array_interface__
    np.testing.assert_array_equal(dg.parameters_to_vector(net), dg.parameters_to_vector(other))


def test_to_float64_packs_again_and_keeps_values():
    net = model()
    values = dg.parameters_to_vector(net).copy()
    net.to(np.float64)
    span = assert_flat(net)
    assert span.data.dtype == np.float64
    np.testing.assert_array_equal(span.data, values.astype(np.float64))


def test_nested_containers_the_outermost_buffer_wins_and_values_stay():
    inner = sp.Sequential(sp.Dense(3, 4, rng=0), sp.Tanh())
    values = dg.parameters_to_vector(inner).copy()
    outer = sp.Sequential(inner, sp.Dense(4, 2, rng=1))
    span = assert_flat(outer)
    np.testing.assert_array_equal(span.data[:values.size], values)
    assert np.shares_memory(dg.parameters_to_vector(inner), span.data)
    pack_parameters(outer.parameters())  # packing again keeps the values
    np.testing.assert_array_equal(dg.parameters_to_vector(outer), span.data)


def test_mixed_dtypes_get_one_buffer_each():
    a, b, c = (sp.Parameter(np.ones(3, dtype)) for dtype in (np.float32, np.float64, np.float32))
    buffers = pack_parameters([a, b, c])
    assert [buf.data.dtype for buf in buffers] == [np.float32, np.float64]
    assert flat_span([a, c]) is not None and flat_span([a, b]) is None


def test_a_rebound_parameter_leaves_the_buffer():
    net = model()
    net[0].bias.data = np.zeros(7, np.float32)  # rebound: the buffer no longer holds it
    assert flat_span(net.parameters()) is None
    vector = dg.parameters_to_vector(net)
    assert not vector[35:42].any()
    net.flatten_parameters()
    assert_flat(net)
    assert not net[0].bias.data.any()


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda net: pickle.loads(pickle.dumps(net))],
                         ids=["deepcopy", "pickle"])
def test_copies_are_packed_and_train_like_the_original(clone):
    net = model()
    X, y = data()
    twin = clone(net)
    assert_flat(twin)
    assert not np.shares_memory(dg.parameters_to_vector(twin), dg.parameters_to_vector(net))
    a = train(net, sp.Adam(net.parameters(), lr=0.01), X, y)
    b = train(twin, sp.Adam(twin.parameters(), lr=0.01), X, y)
    assert a == b
    np.testing.assert_array_equal(dg.parameters_to_vector(twin), dg.parameters_to_vector(net))
    assert_flat(twin)


# --- the input gradient: the container decides --------------------------------------------------

def test_a_sequential_tells_its_first_layer_to_skip_the_gradient_of_the_data():
    net = model()
    X, _ = data()
    net(X)
    assert net.backward(np.ones((len(X), 3), np.float32)) is None
    net.requires_grad_input()
    net(X)
    assert net.backward(np.ones((len(X), 3), np.float32)).shape == X.shape


def test_inner_containers_feed_the_layer_before_them():
    inner = sp.Sequential(sp.Dense(4, 4, rng=0), sp.Tanh())
    outer = sp.Sequential(sp.Dense(3, 4, rng=1), inner, sp.Dense(4, 2, rng=2))
    x = np.ones((2, 3), np.float32)
    outer(x)
    assert outer.backward(np.ones((2, 2), np.float32)) is None
    assert outer[0].weight.grad.any()  # the gradient reached the first layer through inner


def test_a_layer_alone_returns_its_input_gradient():
    layer = sp.Dense(3, 2, rng=0)
    layer(np.ones((4, 3), np.float32))
    assert layer.backward(np.ones((4, 2), np.float32)).shape == (4, 3)


def test_the_trainer_leaves_the_model_as_it_was():
    net = model()
    X, y = data()
    sp.Trainer(net, sp.CrossEntropyLoss(), sp.SGD(net.parameters(), lr=0.1), batch_size=8,
               verbose=0).fit(X, y, epochs=1)
    net(X)
    assert net.backward(np.ones((len(X), 3), np.float32)) is None
    assert_flat(net)
