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
    np.testing.assert_array_equal(span.grad[: g.size], g.ravel())
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
    np.testing.assert_array_equal(span.data[: values.size], values)
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


@pytest.mark.parametrize(
    "clone", [copy.deepcopy, lambda net: pickle.loads(pickle.dumps(net))], ids=["deepcopy", "pickle"]
)
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


def test_a_layer_alone_returns_the_gradient_of_its_input():
    layer = sp.Dense(3, 2, rng=0)
    layer(np.ones((4, 3), np.float32))
    assert layer.backward(np.ones((4, 2), np.float32)).shape == (4, 3)


def test_the_trainer_leaves_the_model_as_it_was():
    net = model()
    X, y = data()
    sp.Trainer(net, sp.CrossEntropyLoss(), sp.SGD(net.parameters(), lr=0.1), batch_size=8, verbose=0).fit(
        X, y, epochs=1
    )
    net(X)
    assert net.backward(np.ones((len(X), 3), np.float32)) is None
    assert_flat(net)


# --- optimizers: one call per group over the span ---------------------------------------------

OPTIMIZERS = {
    "SGD": lambda params: sp.SGD(params, lr=0.05),
    "SGD momentum nesterov": lambda params: sp.SGD(
        params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01
    ),
    "SGD dampening maximize": lambda params: sp.SGD(
        params, lr=0.05, momentum=0.5, dampening=0.3, maximize=True
    ),
    "Adagrad": lambda params: sp.Adagrad(
        params, lr=0.05, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1
    ),
    "RMSprop": lambda params: sp.RMSprop(params, lr=0.01, weight_decay=0.01),
    "RMSprop centered momentum": lambda params: sp.RMSprop(params, lr=0.01, momentum=0.5, centered=True),
    "Adam": lambda params: sp.Adam(params, lr=0.01, weight_decay=0.01),
    "Adam amsgrad maximize": lambda params: sp.Adam(params, lr=0.01, amsgrad=True, maximize=True),
    "AdamW": lambda params: sp.AdamW(params, lr=0.01),
}
STEPS = ("sgd_step", "adagrad_step", "rmsprop_step", "adam_step")


class CountingCore:
    """Stands for ``_core`` in the optimizers' module: counts the step calls and the tensors
    each one received."""

    def __init__(self, core):
        self.core, self.calls = core, []

    def __getattr__(self, name):
        function = getattr(self.core, name)
        if name not in STEPS:
            return function

        def counted(param, *args, **kwargs):
            self.calls.append((name, [a.size for a in param]))
            return function(param, *args, **kwargs)

        return counted


@pytest.fixture
def counting_core(monkeypatch):
    from saddlepoint.optim import optimizers

    counter = CountingCore(optimizers._core)
    monkeypatch.setattr(optimizers, "_core", counter)
    return counter


def per_parameter(net, make):
    """The reference: each parameter its own group, so each is stepped alone."""
    return make([{"params": [p]} for p in net.parameters()])


def assert_same_bits(a, b):
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert x.tobytes() == y.tobytes(), name


def assert_same_optimizer_state(a, b):
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        assert sa[i].keys() == sb[i].keys()
        for key in sa[i]:
            x, y = sa[i][key], sb[i][key]
            assert (x.tobytes() == y.tobytes()) if isinstance(x, np.ndarray) else x == y, (i, key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_group_is_one_call_and_bit_identical_to_stepping_each_parameter(name, dtype, counting_core):
    make = OPTIMIZERS[name]
    X, y = data(dtype)
    net, reference = model(dtype), model(dtype)
    optimizer = make(net.parameters())
    expected = per_parameter(reference, make)
    train(reference, expected, X, y, steps=4)
    counting_core.calls.clear()
    train(net, optimizer, X, y, steps=4)
    total = sum(p.data.size for p in net.parameters())
    assert [sizes for _, sizes in counting_core.calls] == [[total]] * 4  # one span per step
    assert_same_bits(net, reference)
    assert_same_optimizer_state(optimizer, expected)
    # The per-parameter state is views of one flat array per kind.
    states = [optimizer.state[p] for p in net.parameters()]
    for key, value in states[0].items():
        if isinstance(value, np.ndarray):
            assert value.base is not None and all(s[key].base is value.base for s in states)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_group_of_parameters_that_are_not_adjacent_takes_the_list_path(name, counting_core):
    make = OPTIMIZERS[name]
    X, y = data()
    net, reference = model(), model()
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    optimizer = make([{"params": weights}, {"params": biases}])
    expected = per_parameter(reference, make)
    train(reference, expected, X, y, steps=3)
    counting_core.calls.clear()
    train(net, optimizer, X, y, steps=3)
    assert [sizes for _, sizes in counting_core.calls[:2]] == [
        [p.data.size for p in weights],
        [p.data.size for p in biases],
    ]
    assert_same_bits(net, reference)


def test_counts_that_differ_take_the_list_path_and_stay_right(counting_core):
    X, y = data()
    net, reference = model(), model()
    make = OPTIMIZERS["Adam"]
    optimizer, expected = make(net.parameters()), per_parameter(reference, make)
    train(net, optimizer, X, y, steps=2)
    train(reference, expected, X, y, steps=2)
    for opt in (optimizer, expected):  # one parameter's count behind the others'
        state = opt.state_dict()
        state["state"][0]["step"] = 1
        opt.load_state_dict(state)
    counting_core.calls.clear()
    train(net, optimizer, X, y, steps=2)
    assert [sizes for _, sizes in counting_core.calls] == [[p.data.size for p in net.parameters()]] * 2
    train(reference, expected, X, y, steps=2)
    assert_same_bits(net, reference)
    assert_same_optimizer_state(optimizer, expected)


def test_a_resumed_optimizer_packs_its_state_again_and_continues_bit_identically(counting_core):
    X, y = data()
    net = model()
    optimizer = sp.Adam(net.parameters(), lr=0.01, amsgrad=True)
    train(net, optimizer, X, y, steps=3)
    weights, state = net.state_dict(), optimizer.state_dict()
    train(net, optimizer, X, y, steps=3)
    resumed = model(seed=5)
    resumed.load_state_dict(weights)
    again = sp.Adam(resumed.parameters(), lr=0.01, amsgrad=True)
    again.load_state_dict(state)
    counting_core.calls.clear()
    train(resumed, again, X, y, steps=3)
    assert [sizes for _, sizes in counting_core.calls] == [[dg.parameters_to_vector(net).size]] * 3
    assert_same_bits(resumed, net)
    assert_same_optimizer_state(again, optimizer)


def test_a_model_and_its_optimizer_copied_together_train_like_the_originals():
    X, y = data()
    net = model()
    optimizer = sp.SGD(net.parameters(), lr=0.05, momentum=0.9)
    train(net, optimizer, X, y, steps=2)
    twin, twin_optimizer = copy.deepcopy((net, optimizer))
    assert_flat(twin)
    train(net, optimizer, X, y, steps=3)
    train(twin, twin_optimizer, X, y, steps=3)
    assert_same_bits(twin, net)
    assert_same_optimizer_state(twin_optimizer, optimizer)


def test_a_saved_model_loads_packed(tmp_path):
    net = model()
    sp.io.save_model(net, tmp_path / "model.safetensors")
    loaded = sp.io.load_model(tmp_path / "model.safetensors")
    assert_flat(loaded)
    np.testing.assert_array_equal(dg.parameters_to_vector(loaded), dg.parameters_to_vector(net))
