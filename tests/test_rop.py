"""The R-operator protocol: each layer's pair (r_forward, r_backward) against central differences
of its own forward and backward, the doctor's exact Hessian-vector products through a layer
written outside the package, and its honest fallback for a layer without the pair."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import saddlepoint as sp
from saddlepoint import diagnose as dg
from saddlepoint.diagnose import rop
from saddlepoint.nn import ACTIVATIONS

# --- a layer from outside the package, in plain NumPy ----------------------------------------------


class Softplus(sp.Module):
    """``y = log(1 + eˣ)``: forward and backward only, as a user would write it."""

    def forward(self, x):
        self._x = x
        return np.logaddexp(0.0, x)

    def backward(self, grad_output):
        return grad_output / (1 + np.exp(-self._x))


class ExactSoftplus(Softplus):
    """The same layer with its R-operator pair: ``f' = σ(x)``, ``f'' = σ(x)(1 − σ(x))``."""

    def r_forward(self, x, rx, v):
        y = self.forward(x)
        self._rx = rx
        return y, None if rx is None else rx / (1 + np.exp(-x))

    def r_backward(self, g, rg, v, rgrads):
        s = 1 / (1 + np.exp(-self._x))
        rg_in = s * rg
        if self._rx is not None:
            rg_in = rg_in + s * (1 - s) * self._rx * g
        return self.backward(g), rg_in


def user_model(activation):
    return sp.Sequential(
        sp.Dense(4, 6, dtype=np.float64, rng=0), activation, sp.Dense(6, 3, dtype=np.float64, rng=1)
    )


def differenced_products(objective, V, h=1e-5):
    """Central differences of the analytic gradient, computed here independently of the
    Objective's own fallback (another step)."""
    columns = []
    for v in V:
        plus = objective.gradient(objective.point + h * v)[1]
        minus = objective.gradient(objective.point - h * v)[1]
        columns.append((plus - minus) / (2 * h))
    return np.array(columns)


def test_a_user_layer_without_the_pair_falls_back_to_finite_differences_and_says_so(rng):
    X, y = rng.standard_normal((30, 4)), rng.integers(0, 3, 30)
    objective = dg.Objective(user_model(Softplus()), sp.CrossEntropyLoss(), X, y)
    assert not objective.exact_hvp and objective.hvp_method == "finite differences"
    assert objective.hvp_missing == "Softplus (layer '1')"
    V = rng.standard_normal((3, objective.size))
    with pytest.warns(UserWarning, match=r"Softplus \(layer '1'\) has no R-operator pair") as caught:
        products = objective.hessian_vector_products(V)
        objective.hessian_vector_product(V[0])
    assert len(caught) == 1  # once per Objective
    expected = differenced_products(objective, V)
    np.testing.assert_allclose(products, expected, rtol=1e-6, atol=1e-7 * np.max(np.abs(expected)))
    with pytest.raises(ValueError, match="Softplus .layer '1'. has none"):
        dg.Objective(user_model(Softplus()), sp.CrossEntropyLoss(), X, y, hvp="exact")


def test_a_user_layer_with_the_pair_gets_exact_products(rng):
    X, y = rng.standard_normal((30, 4)), rng.integers(0, 3, 30)
    objective = dg.Objective(user_model(ExactSoftplus()), sp.CrossEntropyLoss(), X, y, batch_size=16)
    assert objective.exact_hvp and objective.hvp_method == "exact" and objective.hvp_missing is None
    V = rng.standard_normal((3, objective.size))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        products = objective.hessian_vector_products(V)
    expected = differenced_products(objective, V)
    np.testing.assert_allclose(products, expected, rtol=1e-6, atol=1e-8 * np.max(np.abs(expected)))
    fallback = dg.Objective(user_model(Softplus()), sp.CrossEntropyLoss(), X, y, batch_size=16)
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(
            fallback.hessian_vector_products(V), products, rtol=1e-6, atol=1e-8 * np.max(np.abs(expected))
        )


def test_a_subclass_that_changes_forward_does_not_inherit_the_pair():
    class Doubled(ExactSoftplus):
        def forward(self, x):
            return 2 * super().forward(x)

    assert rop.without_r_operator(user_model(ExactSoftplus())) is None
    assert (
        rop.without_r_operator(user_model(Doubled()))
        == "Doubled (layer '1': it overrides forward but not r_forward)"
    )
    nested = sp.Sequential(sp.Dense(2, 2), sp.Sequential(sp.Tanh(), Softplus()))
    assert rop.without_r_operator(nested) == "Softplus (layer '1.1')"
    assert rop.without_r_operator(Softplus()) == "Softplus (the model)"


def test_sequential_names_the_layer_without_the_pair():
    with pytest.raises(TypeError, match=r"layer 1 \(Softplus\) has no r_forward"):
        user_model(Softplus()).r_forward(np.zeros((2, 4)), None, {})


# --- every built-in layer against central differences of its own forward and backward --------------


def numeric_products(layer, x, rx, v, g, rg, h=1e-6, before=lambda: None):
    """Central differences along each direction j, moving the input by ``rx[j]``, the parameters
    by ``v[name][j]`` and the output gradient by ``rg[j]``: ``R{y}``, ``R{g_in}`` and each
    parameter's ``R{∇}``, stacked over j."""
    params = dict(layer.named_parameters())
    base = {name: p.data.copy() for name, p in params.items()}

    def evaluate(step, j):
        for name, p in params.items():
            p.data[...] = base[name] + step * v[name][j]
        before()
        out = layer.forward(x if rx is None else x + step * rx[j])
        layer.zero_grad()
        grad_in = layer.backward(g + step * rg[j])
        return [out.copy(), None if grad_in is None else grad_in.copy()] + [
            params[name].grad.copy() for name in sorted(params)
        ]

    columns = []
    for j in range(len(rg)):
        plus, minus = evaluate(h, j), evaluate(-h, j)
        columns.append([None if a is None else (a - b) / (2 * h) for a, b in zip(plus, minus)])
    for name, p in params.items():
        p.data[...] = base[name]
    return [None if column[0] is None else np.array(column) for column in zip(*columns)]


def check_layer(layer, x, k=3, with_rx=True, rng=None, before=lambda: None):
    rng = np.random.default_rng(0) if rng is None else rng
    v = {name: rng.standard_normal((k,) + p.data.shape) for name, p in layer.named_parameters()}
    rx = rng.standard_normal((k,) + x.shape) if with_rx else None
    before()
    y = layer.forward(x)
    g, rg = rng.standard_normal(y.shape), rng.standard_normal((k,) + y.shape)
    before()
    y, ry = layer.r_forward(x, rx, v)
    rgrads = {name: np.zeros_like(block) for name, block in v.items()}
    grad_in, rg_in = layer.r_backward(g, rg, v, rgrads)
    expected = numeric_products(layer, x, rx, v, g, rg, before=before)
    exact = [ry if ry is not None else np.zeros((k,) + y.shape), rg_in] + [rgrads[name] for name in sorted(v)]
    assert len(exact) == len(expected)
    for ours, theirs in zip(exact, expected):
        if theirs is None:
            assert ours is None
            continue
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7 * max(1.0, np.max(np.abs(theirs))))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_rx", [True, False], ids=["rx", "no-rx"])
def test_dense(bias, with_rx, rng):
    check_layer(
        sp.Dense(5, 4, bias=bias, dtype=np.float64, rng=0),
        rng.standard_normal((7, 5)),
        with_rx=with_rx,
        rng=rng,
    )


def test_dense_without_the_gradient_of_its_input_returns_none(rng):
    layer = sp.Dense(5, 4, dtype=np.float64, rng=0).requires_grad_input(False)
    check_layer(layer, rng.standard_normal((7, 5)), rng=rng)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations(name, rng):
    layer = ACTIVATIONS[name]()
    check_layer(layer, 2 * rng.standard_normal((6, 5)), rng=rng)
    check_layer(layer, 2 * rng.standard_normal((2, 3, 4)), rng=rng)


def test_leaky_relu_with_its_own_slope(rng):
    check_layer(sp.LeakyReLU(0.3), rng.standard_normal((6, 5)), rng=rng)


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape", [(8, 3), (6, 3, 4)], ids=["NC", "NCL"])
def test_batch_norm(training, affine, shape, rng):
    layer = sp.BatchNorm1d(3, affine=affine, dtype=np.float64)
    layer.forward(rng.standard_normal(shape) * 2 + 1)  # running statistics away from (0, 1)
    if affine:
        layer.weight.data[:] = rng.uniform(0.5, 2, 3)
        layer.bias.data[:] = rng.standard_normal(3)
    layer.train(training)
    check_layer(layer, rng.standard_normal(shape), rng=rng)


def test_batch_norm_in_eval_mode_without_running_statistics(rng):
    layer = sp.BatchNorm1d(4, track_running_stats=False, dtype=np.float64).eval()
    check_layer(layer, rng.standard_normal((9, 4)), rng=rng)


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape,normalized", [((7, 5), 5), ((3, 4, 5), 5), ((3, 4, 5), (4, 5))])
def test_layer_norm(affine, shape, normalized, rng):
    layer = sp.LayerNorm(normalized, elementwise_affine=affine, dtype=np.float64)
    if affine:
        layer.weight.data[...] = rng.uniform(0.5, 2, layer.weight.data.shape)
        layer.bias.data[...] = rng.standard_normal(layer.bias.data.shape)
    check_layer(layer, rng.standard_normal(shape), rng=rng)


@pytest.mark.parametrize("with_rx", [True, False], ids=["rx", "no-rx"])
def test_dropout_and_identity_in_eval_mode(with_rx, rng):
    check_layer(sp.Dropout(0.4).eval(), rng.standard_normal((6, 5)), with_rx=with_rx, rng=rng)
    check_layer(sp.Identity(), rng.standard_normal((6, 5)), with_rx=with_rx, rng=rng)


def test_dropout_in_training_is_exact_for_the_mask_it_draws(rng):
    layer = sp.Dropout(0.4)

    def same_mask():
        layer.rng = np.random.default_rng(7)

    check_layer(layer, rng.standard_normal((6, 5)), rng=rng, before=same_mask)


def test_sequential_chains_its_layers(rng):
    model = sp.Sequential(
        sp.Dense(4, 5, dtype=np.float64, rng=0),
        sp.BatchNorm1d(5, dtype=np.float64).eval(),
        sp.Tanh(),
        sp.Sequential(sp.Dense(5, 5, dtype=np.float64, rng=1), ExactSoftplus()),
        sp.LayerNorm(5, dtype=np.float64),
        sp.Dropout(0.5).eval(),
        sp.Dense(5, 2, dtype=np.float64, rng=2),
    )
    model[1].running_mean[:] = rng.standard_normal(5)
    check_layer(model, rng.standard_normal((8, 4)), rng=rng)


# --- the doctor through normalization layers --------------------------------------------------------


def test_exact_products_through_layer_norm(rng):
    model = sp.Sequential(
        sp.Dense(3, 4, dtype=np.float64, rng=0),
        sp.LayerNorm(4, dtype=np.float64),
        sp.Tanh(),
        sp.Dense(4, 2, dtype=np.float64, rng=1),
    )
    model[1].weight.data[:] = rng.uniform(0.5, 2, 4)
    X, y = rng.standard_normal((20, 3)), rng.integers(0, 2, 20)
    exact = dg.Objective(model, sp.CrossEntropyLoss(), X, y)
    assert exact.hvp_method == "exact"
    H = dg.Objective(model, sp.CrossEntropyLoss(), X, y, hvp="finite differences").hessian()
    np.testing.assert_allclose(exact.hessian(), H, atol=1e-8 * np.max(np.abs(H)))


def test_exact_products_through_batch_norm_without_running_statistics(rng):
    """Eval mode then normalizes each chunk with its own statistics: a function of the batch."""
    model = sp.Sequential(
        sp.Dense(3, 5, dtype=np.float64, rng=0),
        sp.BatchNorm1d(5, track_running_stats=False, dtype=np.float64),
        sp.Sigmoid(),
        sp.Dense(5, 2, dtype=np.float64, rng=1),
    )
    X, Y = rng.standard_normal((24, 3)), rng.standard_normal((24, 2))
    exact = dg.Objective(model, sp.MSELoss(), X, Y, batch_size=10)
    assert exact.hvp_method == "exact"
    H = dg.Objective(model, sp.MSELoss(), X, Y, batch_size=10, hvp="finite differences").hessian()
    np.testing.assert_allclose(exact.hessian(), H, atol=1e-7 * np.max(np.abs(H)))
