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


# --- the optimizer's step plan ---------------------------------------------------------------
OPTIMIZERS = {
    "adam": lambda p: sp.optim.Adam(p, 0.01),
    "adamw_amsgrad": lambda p: sp.optim.AdamW(p, 0.01, amsgrad=True),
    "sgd_momentum": lambda p: sp.optim.SGD(p, 0.05, momentum=0.9, nesterov=True),
    "sgd": lambda p: sp.optim.SGD(p, 0.05),
    "rmsprop_centered": lambda p: sp.optim.RMSprop(p, 0.01, momentum=0.5, centered=True),
    "adagrad": lambda p: sp.optim.Adagrad(p, 0.05, lr_decay=0.01),
}


def _tiny_fit_pair(make):
    """Two identical models and optimizers: one steps with its plans, the other without."""
    models = [
        sp.nn.Sequential(sp.nn.Dense(6, 9, rng=0), sp.nn.Tanh(), sp.nn.Dense(9, 3, rng=1)) for _ in range(2)
    ]
    opts = [make(m.parameters()) for m in models]
    opts[1]._run_plans = lambda plans: False  # the general path on every step
    return models, opts


def _steps(models, opts, count, rng):
    loss = sp.losses.CrossEntropyLoss()
    for _ in range(count):
        x = rng.standard_normal((16, 6)).astype(np.float32)
        y = rng.integers(0, 3, 16)
        for model, opt in zip(models, opts):
            sp.training.train_step(model, loss, opt, x, y)


def _assert_same(models, opts):
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    sa, sb = opts[0].state_dict(), opts[1].state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for key, entry in sa["state"].items():
        for name, value in entry.items():
            np.testing.assert_array_equal(value, sb["state"][key][name])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_planned_steps_are_bit_identical_to_the_general_path(name):
    models, opts = _tiny_fit_pair(OPTIMIZERS[name])
    rng = np.random.default_rng(0)
    _steps(models, opts, 5, rng)
    assert opts[0]._plans is not None  # steady state: the plan is used
    _assert_same(models, opts)
    # What a plan must notice, each done to both: a new learning rate, the step counts and one
    # parameter's state arrays replaced, load_state_dict, a parameter rebound out of the flat buffer, repacking.
    for opt in opts:
        opt.param_groups[0]["lr"] *= 0.5
    _steps(models, opts, 2, rng)
    _assert_same(models, opts)
    for opt, model in zip(opts, models):
        for p in model.parameters():  # every count moved
            state = opt.state[p]
            if "step" in state:
                state["step"] += 3
    _steps(models, opts, 2, rng)
    _assert_same(models, opts)
    for opt, model in zip(opts, models):
        state = opt.state[model.parameters()[1]]
        for key, value in state.items():  # one parameter's arrays copied
            if isinstance(value, np.ndarray):
                state[key] = value.copy()
    _steps(models, opts, 2, rng)
    _assert_same(models, opts)
    saved = opts[0].state_dict()
    for opt in opts:
        opt.load_state_dict(saved)
    _steps(models, opts, 2, rng)
    _assert_same(models, opts)
    for model in models:
        p = model.parameters()[0]
        p.data = p.data.copy()
    _steps(models, opts, 2, rng)
    _assert_same(models, opts)
    for model in models:
        model.flatten_parameters()
    _steps(models, opts, 3, rng)
    _assert_same(models, opts)
    assert opts[0]._plans is not None


def test_a_plan_writes_the_zeros_zero_grad_left_pending():
    """A parameter whose gradient no layer wrote since zero_grad steps with a zero gradient."""
    models, opts = _tiny_fit_pair(OPTIMIZERS["sgd"])
    rng = np.random.default_rng(1)
    _steps(models, opts, 3, rng)
    for model, opt in zip(models, opts):
        opt.zero_grad()
        model.parameters()[0].grad = np.ones_like(model.parameters()[0].data)
        opt.step()  # the others' gradients are zero: only the first parameter moves
    _assert_same(models, opts)


def test_the_trainers_guard_checks_a_flat_span_of_gradients_at_once():
    from saddlepoint.training.trainer import _BatchRollback, _NotFinite

    model = _mlp()
    guard = _BatchRollback(model)
    params = model.parameters()
    for p in params:
        p.grad = np.ones_like(p.data)
    guard.before_update()
    guard.before_update()
    assert guard.flat_grads is not None  # the one-pass path
    params[-1]._grad[0] = np.nan
    with pytest.raises(_NotFinite):
        guard.before_update()
    params[-1].zero_grad()  # zeros pending: the stale NaN is not the gradient
    guard.before_update()
    params[1]._grad = np.full_like(params[1].data, np.inf)  # rebound out of the span
    with pytest.raises(_NotFinite):
        guard.before_update()
