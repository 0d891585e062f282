"""Steady state without allocation: after a warm-up epoch, Trainer.fit allocates no array per
step (the layers and the loss reuse their buffers inside train_step), and outside a training
step every call still returns new arrays.

Measured with tracemalloc, not with timings: NumPy reports its data buffers to tracemalloc, so
an array made and freed within a step shows in the traced peak, and one kept per step in the
traced size. The hidden activations are 128 KiB each, well above the few KiB of Python objects
(and the epoch's 8 KiB permutation) that an epoch makes and frees.
"""

import tracemalloc

import numpy as np
import pytest

import saddlepoint as sp
from saddlepoint.nn.scratch import reusing_buffers

N, FEATURES, WIDTH, BATCH, CLASSES = 1024, 20, 256, 128, 3
ARRAY = BATCH * WIDTH * 4  # bytes of one hidden activation (float32)


def _mlp():
    return sp.nn.Sequential(
        sp.nn.Dense(FEATURES, WIDTH, rng=0),
        sp.nn.ReLU(),
        sp.nn.Dense(WIDTH, WIDTH, rng=1),
        sp.nn.Tanh(),
        sp.nn.Dense(WIDTH, CLASSES, rng=2),
    )


def _mlp_norm_dropout():
    return sp.nn.Sequential(
        sp.nn.Dense(FEATURES, WIDTH, rng=0),
        sp.nn.BatchNorm1d(WIDTH),
        sp.nn.ReLU(),
        sp.nn.Dropout(0.2, rng=1),
        sp.nn.Dense(WIDTH, WIDTH, rng=2),
        sp.nn.LayerNorm(WIDTH),
        sp.nn.Sigmoid(),
        sp.nn.Dense(WIDTH, CLASSES, rng=3),
    )


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, FEATURES)).astype(np.float32)
    return X, rng.integers(0, CLASSES, N)


@pytest.mark.parametrize("build", [_mlp, _mlp_norm_dropout], ids=["mlp", "batchnorm_dropout"])
@pytest.mark.parametrize("make_optimizer", [sp.optim.Adam, lambda p: sp.optim.SGD(p, 0.01, momentum=0.9)])
def test_fit_allocates_nothing_per_step(build, make_optimizer):
    model = build()
    X, y = _data()
    trainer = sp.training.Trainer(
        model, sp.losses.CrossEntropyLoss(), make_optimizer(model.parameters()), batch_size=BATCH, verbose=0
    )
    steps = 50 * (N // BATCH)
    tracemalloc.start()
    try:
        trainer.fit(X, y, 1)  # warm-up: buffers and optimizer state are made here
        trainer.fit(X, y, 2)  # and the batch buffers of fit() itself, once per call
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        before = tracemalloc.take_snapshot()
        trainer.fit(X, y, 52)
        end, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # Nothing kept per step (the history keeps a few bytes per epoch, fit() its batch buffers).
    assert end - start < ARRAY // 2, f"traced memory grew by {end - start} bytes over {steps} steps"
    # Nothing made and freed per step: an array as large as a hidden activation would raise the
    # peak by at least ARRAY.
    assert peak - start < ARRAY // 2, f"traced peak rose {peak - start} bytes above the start"
    grown = [
        stat
        for stat in after.compare_to(before, "lineno")
        if stat.count_diff >= steps or stat.size_diff >= ARRAY // 2
    ]
    assert not grown, "allocations that grow with the steps:\n" + "\n".join(map(str, grown))


def test_outside_a_step_every_call_returns_new_arrays():
    """The buffers are reused only inside a training step: a caller's arrays stay its own."""
    model = _mlp_norm_dropout()
    X, y = _data()
    x = X[:BATCH]
    loss = sp.losses.CrossEntropyLoss()
    trainer = sp.training.Trainer(model, loss, sp.optim.Adam(model.parameters()), batch_size=BATCH, verbose=0)
    trainer.fit(X, y, 1)  # the layers now hold their buffers
    model.eval()
    first = model.forward(x)
    kept = first.copy()
    second = model.forward(x)
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, kept)
    loss(first, y[:BATCH])
    g1 = loss.backward()
    g1_kept = g1.copy()
    loss(second + 1, y[:BATCH])
    assert not np.shares_memory(g1, loss.backward())
    np.testing.assert_array_equal(g1, g1_kept)
    model.train()
    model.requires_grad_input()
    out1 = model.forward(x)
    grad1 = model.backward(np.ones_like(out1))
    out2 = model.forward(x)
    grad2 = model.backward(np.ones_like(out2))
    assert not np.shares_memory(out1, out2) and not np.shares_memory(grad1, grad2)


def test_inside_the_scope_a_layer_reuses_its_buffers_and_gives_the_same_values():
    layer = sp.nn.Dense(FEATURES, WIDTH, rng=0)
    x = _data()[0][:BATCH]
    fresh = layer.forward(x)
    with reusing_buffers():
        a = layer.forward(x)
        np.testing.assert_array_equal(a, fresh)
        b = layer.forward(x)
        assert b is a  # the same buffer, same shape
        c = layer.forward(x[:7])
        assert c.shape == (7, WIDTH) and not np.shares_memory(c, a)  # a new shape: a new buffer
    assert not np.shares_memory(layer.forward(x), a)  # outside again: new arrays
