"""Critical points: Hessian-vector products, the Hessian and its spectrum, saddle escape."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import saddlepoint as sp
from saddlepoint import diagnose as dg
from saddlepoint.diagnose.curvature import _kind


def worked_example():
    """The course's model y = w1·w2·x with one sample (x=1, ŷ=1), at w1 = w2 = 0."""
    model = sp.Sequential(
        sp.Dense(1, 1, bias=False, dtype=np.float64), sp.Dense(1, 1, bias=False, dtype=np.float64)
    )
    for p in model.parameters():
        p.data[...] = 0.0
    return model, sp.MSELoss(), np.ones((1, 1)), np.ones((1, 1))


def tiny_tanh_network(seed=0):
    rng = np.random.default_rng(seed)
    model = sp.mlp([3, 4, 3], "tanh", dtype=np.float64, rng=seed)
    X = rng.standard_normal((20, 3))
    y = rng.integers(0, 3, 20)
    return model, sp.CrossEntropyLoss(), X, y


def trained_small_network(hidden=12, epochs=30, seed=0):
    """A 4-hidden-12-3 tanh network trained a little on synthetic classes (~100 parameters)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 0.5)
    model = sp.mlp([4, hidden, 3], "tanh", dtype=np.float64, rng=seed)
    trainer = sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        sp.Adam(model.parameters(), lr=0.01),
        verbose=0,
        seed=seed,
        dtype=np.float64,
    )
    trainer.fit(X, y, epochs)
    return model, sp.CrossEntropyLoss(), X, y


def loss_value_hessian(model, loss, X, y, h=1e-4):
    """An independent Hessian: second differences of loss *values* (no gradient code)."""
    objective = dg.Objective(model, loss, X, y)
    theta, n = objective.point, objective.size
    H = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            e_i, e_j = np.eye(n)[i] * h, np.eye(n)[j] * h
            H[i, j] = H[j, i] = (
                objective.loss_at(theta + e_i + e_j)
                - objective.loss_at(theta + e_i - e_j)
                - objective.loss_at(theta - e_i + e_j)
                + objective.loss_at(theta - e_i - e_j)
            ) / (4 * h * h)
    return H


# --- the course's worked example ------------------------------------------------------------------


def test_worked_example_is_a_saddle_point_with_eigenvalues_minus_2_and_2():
    model, loss, X, y = worked_example()
    H = dg.hessian(model, loss, X, y)
    np.testing.assert_allclose(H, [[0, -2], [-2, 0]], atol=1e-8)
    point = dg.critical_point(model, loss, X, y)
    assert point.kind == "saddle point"
    np.testing.assert_allclose(point.eigenvalues, [-2, 2], rtol=1e-8)
    assert point.gradient_norm == 0.0 and point.critical
    assert point.minimum_ratio == 0.5 and (point.positive, point.negative, point.near_zero) == (1, 1, 0)
    assert point.loss == 1.0


def test_moving_along_the_negative_eigenvector_lowers_the_loss():
    model, loss, X, y = worked_example()
    objective = dg.Objective(model, loss, X, y)
    u = np.array([1.0, 1.0]) / np.sqrt(2)
    for t in (1e-3, 0.1, 1.0):
        # L(t·u) = (1 − t²/2)² < 1; the course's estimate is L + ½·λ·t² with λ = −2.
        assert objective.loss_at(t * u) == pytest.approx((1 - t * t / 2) ** 2)
        assert objective.loss_at(t * u) < 1.0
    result = dg.escape_saddle(model, loss, X, y)
    assert result.escaped and result.eigenvalue == pytest.approx(-2)
    np.testing.assert_allclose(np.abs(result.direction), [2**-0.5, 2**-0.5], rtol=1e-8)
    assert result.loss_before == 1.0 and result.loss_after < 1e-3
    w1, w2 = (p.data.item() for p in model.parameters())
    assert (1 - w1 * w2) ** 2 == pytest.approx(result.loss_after)


def test_gradient_descent_stays_at_the_saddle_where_the_escape_leaves_it():
    model, loss, X, y = worked_example()
    sgd = sp.Trainer(
        model, loss, sp.SGD(model.parameters(), lr=0.1), batch_size=1, verbose=0, dtype=np.float64
    )
    history = sgd.fit(X, y, epochs=20)
    assert history["loss"] == [1.0] * 20  # zero gradient: plain gradient descent never moves
    assert all(p.data.item() == 0.0 for p in model.parameters())

    model, loss, X, y = worked_example()
    escape = dg.SaddleEscape(X, y, patience=2)
    trainer = sp.Trainer(
        model,
        loss,
        sp.SGD(model.parameters(), lr=0.1),
        batch_size=1,
        verbose=0,
        dtype=np.float64,
        callbacks=[escape],
    )
    history = trainer.fit(X, y, epochs=20)
    assert len(escape.escapes) >= 1 and escape.escapes[0][1].escaped
    assert history["loss"][-1] < 1e-6


def test_escape_leaves_a_minimum_alone():
    model, loss, X, y = worked_example()
    for p in model.parameters():
        p.data[...] = 1.0  # w1·w2 = 1: a global minimum
    result = dg.escape_saddle(model, loss, X, y)
    assert not result.escaped and result.step == 0.0
    assert all(p.data.item() == 1.0 for p in model.parameters())


# --- Hessian against independent computations ----------------------------------------------------


def test_hessian_of_least_squares_is_2_XtX_over_n(rng):
    X = rng.standard_normal((30, 4))
    y = rng.standard_normal((30, 1))
    model = sp.Dense(4, 1, dtype=np.float64, rng=0)
    A = np.hstack([X, np.ones((30, 1))])  # parameter order: weight (1, 4), then bias
    exact = 2 * A.T @ A / len(X)
    H = dg.hessian(model, sp.MSELoss(), X, y)
    np.testing.assert_allclose(H, exact, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(np.linalg.eigvalsh(H), np.linalg.eigvalsh(exact), rtol=1e-8)


def test_hessian_eigenvalues_match_an_independent_hessian_of_a_tiny_network():
    model, loss, X, y = tiny_tanh_network()
    H = dg.hessian(model, loss, X, y)
    independent = loss_value_hessian(model, loss, X, y)
    np.testing.assert_allclose(H, independent, atol=2e-6)
    np.testing.assert_allclose(np.linalg.eigvalsh(H), np.linalg.eigvalsh(independent), atol=2e-6)


def test_hessian_vector_product_is_H_times_v_and_linear(rng):
    model, loss, X, y = tiny_tanh_network()
    H = dg.Objective(model, loss, X, y, hvp="finite differences").hessian()  # the other method
    v, w = rng.standard_normal((2, len(H)))
    hv = dg.hessian_vector_product(model, loss, X, y, v)
    np.testing.assert_allclose(hv, H @ v, rtol=1e-7, atol=1e-8)
    objective = dg.Objective(model, loss, X, y)
    combined = objective.hessian_vector_product(2 * v - 3 * w)
    np.testing.assert_allclose(combined, 2 * hv - 3 * objective.hessian_vector_product(w), atol=1e-7)
    np.testing.assert_array_equal(objective.hessian_vector_product(np.zeros_like(v)), 0)


def test_float32_models_are_analysed_in_float64_without_being_changed():
    model, loss, X, y = tiny_tanh_network()
    model32 = sp.mlp([3, 4, 3], "tanh", rng=0)
    before = [p.data.copy() for p in model32.parameters()]
    model32.train()
    H32 = dg.hessian(model32, loss, X, y)
    H64 = dg.hessian(model, loss, X, y)
    # The float32 weights, widened, are close to the float64 ones: so are the Hessians.
    np.testing.assert_allclose(H32, H64, atol=1e-5)
    for p, b in zip(model32.parameters(), before):
        np.testing.assert_array_equal(p.data, b)
        assert p.dtype == np.float32
    assert model32.training


# --- spectrum at scale ---------------------------------------------------------------------------


def test_lanczos_extremes_match_the_full_spectrum():
    model, loss, X, y = trained_small_network(hidden=40)  # 323 parameters: more than 100 steps
    spectrum = np.linalg.eigvalsh(dg.hessian(model, loss, X, y))
    scale = np.max(np.abs(spectrum))
    for which, k, wanted in (("largest", 3, spectrum[-3:]), ("smallest", 2, spectrum[:2])):
        # By default Lanczos stops at residuals of 1e-3 × the scale: each value is then within
        # its residual of an eigenvalue (a theorem for symmetric matrices), and close to the wanted one.
        found = dg.top_eigenvalues(model, loss, X, y, k=k, which=which)
        assert found.converged and found.stopped is None and np.all(found.residuals <= 1e-3 * scale * 1.01)
        distance = np.min(np.abs(found.values[:, None] - spectrum[None, :]), axis=1)
        assert np.all(distance <= found.residuals * (1 + 1e-6) + 1e-12)
        np.testing.assert_allclose(found, wanted, atol=1e-3 * scale)
        tight = dg.top_eigenvalues(model, loss, X, y, k=k, which=which, residual_tolerance=1e-9)
        np.testing.assert_allclose(tight, wanted, atol=1e-6 * scale)
        assert found.hvps < tight.hvps <= len(spectrum) + 5
    full = dg.critical_point(model, loss, X, y, method="full")
    lanczos = dg.critical_point(model, loss, X, y, method="lanczos", residual_tolerance=1e-9)
    assert lanczos.method == "lanczos" and full.method == "full" and lanczos.converged
    np.testing.assert_allclose(lanczos.eigenvalues, [spectrum[0], spectrum[-1]], atol=1e-6 * scale)
    # Trained only a little: the gradient is not small, so neither calls it a saddle point.
    assert not full.critical and lanczos.kind == full.kind == "not a critical point"
    assert lanczos.curvature == full.curvature == "indefinite"
    assert abs(lanczos.minimum_ratio - full.minimum_ratio) < 0.05  # measured 0.556 vs 0.567


def test_hutchinson_trace_and_slq_density_agree_with_the_full_spectrum():
    model, loss, X, y = trained_small_network()
    spectrum = np.linalg.eigvalsh(dg.hessian(model, loss, X, y))
    estimate = dg.trace(model, loss, X, y, samples=200)
    assert abs(estimate.trace - spectrum.sum()) < 4 * estimate.standard_error + 1e-9
    density = dg.spectral_density(model, loss, X, y, steps=len(spectrum), vectors=2)
    # With as many steps as parameters the Ritz values are the eigenvalues themselves.
    assert density.nodes.min() == pytest.approx(spectrum[0], abs=1e-6)
    assert density.nodes.max() == pytest.approx(spectrum[-1], abs=1e-6)
    step = density.grid[1] - density.grid[0]
    assert np.sum(density.density) * step == pytest.approx(1.0, abs=0.02)
    assert np.sum(density.weights) == pytest.approx(1.0)


def test_full_hessian_handles_two_thousand_parameters(rng):
    model = sp.mlp([16, 60, 60, 1], "tanh", dtype=np.float64, rng=0)  # 4,741 parameters
    X, y = rng.standard_normal((64, 16)), rng.standard_normal((64, 1))
    small = sp.mlp([16, 100, 3], "tanh", dtype=np.float64, rng=0)  # 2,003 parameters
    assert sum(p.data.size for p in small.parameters()) == 2003
    point = dg.critical_point(small, sp.CrossEntropyLoss(), X, rng.integers(0, 3, 64), method="full")
    assert point.method == "full" and len(point.eigenvalues) == 2003
    assert dg.critical_point(model, sp.MSELoss(), X, y).method == "lanczos"  # above MAX_FULL_HESSIAN


# --- classification rules --------------------------------------------------------------------------


def test_least_squares_optimum_is_a_local_minimum(rng):
    X, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 1))
    model = sp.Dense(3, 1, dtype=np.float64)
    A = np.hstack([X, np.ones((40, 1))])
    solution = np.linalg.lstsq(A, y, rcond=None)[0].ravel()
    dg.vector_to_parameters(solution, model)
    point = dg.critical_point(model, sp.MSELoss(), X, y)
    assert point.kind == "local minimum" and point.critical and point.minimum_ratio == 1.0


def test_a_rescaling_symmetry_gives_a_degenerate_point(rng):
    X = rng.standard_normal((40, 1))
    y = 3 * X
    model = sp.Sequential(
        sp.Dense(1, 1, bias=False, dtype=np.float64), sp.Dense(1, 1, bias=False, dtype=np.float64)
    )
    dg.vector_to_parameters(np.array([1.5, 2.0]), model)  # w1·w2 = 3: a minimum along a valley
    point = dg.critical_point(model, sp.MSELoss(), X, y)
    assert point.kind == "degenerate" and point.near_zero == 1 and point.positive == 1


@pytest.mark.parametrize(
    "signs, kind",
    [
        ((True, True, False), "saddle point"),
        ((True, True, True), "saddle point"),
        ((True, False, False), "local minimum"),
        ((False, True, False), "local maximum"),
        ((True, False, True), "degenerate"),
        ((False, True, True), "degenerate"),
        ((False, False, True), "degenerate"),
    ],
)
def test_kind_rules(signs, kind):
    assert _kind(*signs) == kind


def test_critical_point_serializes(tmp_path):
    import json

    point = dg.critical_point(*worked_example())
    data = json.loads(point.to_json())
    assert data["kind"] == "saddle point" and data["eigenvalues"] == pytest.approx([-2, 2])
    assert "saddle point" in str(point) and "minimum ratio" in str(point)


# --- parameter vectors and errors -------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31))
def test_parameter_vector_round_trip(n_in, n_out, seed):
    model = sp.mlp([n_in, 5, n_out], dtype=np.float64, rng=seed)
    vector = dg.parameters_to_vector(model)
    assert vector.shape == (sum(p.data.size for p in model.parameters()),)
    new = np.random.default_rng(seed).standard_normal(vector.shape)
    dg.vector_to_parameters(new, model)
    np.testing.assert_array_equal(dg.parameters_to_vector(model), new)


def test_bad_input_is_rejected_and_changes_nothing():
    model, loss, X, y = tiny_tanh_network()
    before = dg.parameters_to_vector(model).copy()  # a view of the model's parameters: keep a copy
    with pytest.raises(ValueError, match="vector must be 1-D with 31 values"):
        dg.vector_to_parameters(np.zeros(5), model)
    with pytest.raises(ValueError, match="vector must be finite"):
        dg.vector_to_parameters(np.full(31, np.nan), model)
    with pytest.raises(ValueError, match=r"v must have shape \(31,\)"):
        dg.hessian_vector_product(model, loss, X, y, np.zeros(3))
    with pytest.raises(ValueError, match="V must be finite"):
        dg.Objective(model, loss, X, y).hessian_vector_products(np.full((2, 31), np.inf))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        dg.Objective(model, loss, X, y, batch_size=0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        dg.spectral_density(model, loss, X, y, sigma=0)
    with pytest.raises(ValueError, match="same number"):
        dg.hessian(model, loss, X, y[:5])
    with pytest.raises(ValueError, match="method must be"):
        dg.critical_point(model, loss, X, y, method="exact")
    with pytest.raises(TypeError, match="model must be a saddlepoint Module"):
        dg.hessian("model", loss, X, y)
    with pytest.raises(ValueError, match="X holds NaN"):
        dg.gradient_norm(model, loss, np.full_like(X, np.nan), y)
    with pytest.raises(ValueError, match="k must be in"):
        dg.top_eigenvalues(model, loss, X, y, k=0)
    np.testing.assert_array_equal(dg.parameters_to_vector(model), before)


def test_module_to_float64_converts_parameters_and_buffers(rng):
    model = sp.Sequential(sp.Dense(4, 6, rng=0), sp.BatchNorm1d(6), sp.ReLU(), sp.Dense(6, 2, rng=0))
    X = rng.standard_normal((16, 4)).astype(np.float32)
    model.forward(X)  # updates the running statistics
    expected = model.eval().forward(X)
    assert model.to(np.float64) is model
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64 and model[1].num_batches_tracked.dtype == np.int64
    np.testing.assert_allclose(model.forward(X.astype(np.float64)), expected, rtol=1e-5, atol=1e-6)


# --- exact products (R-operator) against finite differences, PyTorch and a frozen-mask Hessian ------


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "leaky_relu", "hard_sigmoid"])
@pytest.mark.parametrize(
    "loss",
    [sp.CrossEntropyLoss(), sp.CrossEntropyLoss(weight=[1, 2, 3], label_smoothing=0.1)],
    ids=["ce", "weighted-smoothed-ce"],
)
def test_exact_products_match_finite_differences_away_from_kinks(activation, loss, rng):
    model = sp.mlp([5, 7, 6, 3], activation, dtype=np.float64, rng=0)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    exact = dg.Objective(model, loss, X, y, batch_size=16)
    differences = dg.Objective(model, loss, X, y, batch_size=16, hvp="finite differences")
    assert exact.hvp_method == "exact" and differences.hvp_method == "finite differences"
    H = differences.hessian()
    np.testing.assert_allclose(exact.hessian(), H, atol=1e-8 * np.max(np.abs(H)))


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize(
    "loss", [sp.MSELoss(), sp.L1Loss(), sp.BCEWithLogitsLoss()], ids=["mse", "l1", "bce"]
)
def test_exact_products_through_batch_norm_and_dropout_in_eval_mode(loss, affine, rng):
    model = sp.Sequential(
        sp.Dense(4, 6, dtype=np.float64, rng=0),
        sp.BatchNorm1d(6, affine=affine, dtype=np.float64),
        sp.Tanh(),
        sp.Dropout(0.3),
        sp.Dense(6, 2, dtype=np.float64, rng=1),
    )
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 2))
    model.forward(X)  # running statistics away from (0, 1)
    if affine:
        model[1].weight.data[:] = rng.uniform(0.5, 2, 6)
        model[1].bias.data[:] = rng.standard_normal(6)
    if isinstance(loss, sp.BCEWithLogitsLoss):
        Y = (Y > 0).astype(np.float64)
    exact = dg.Objective(model, loss, X, Y).hessian()
    H = dg.Objective(model, loss, X, Y, hvp="finite differences").hessian()
    np.testing.assert_allclose(exact, H, atol=1e-8 * np.max(np.abs(H)))


def test_relu_hessian_is_that_of_the_network_with_its_activation_pattern_frozen(rng):
    """Across a ReLU kink the gradient jumps; the Hessian (as autograd defines it) is that of the
    network whose ReLU on/off pattern is frozen, a smooth function we difference in NumPy."""
    model = sp.mlp([3, 12, 1], "relu", dtype=np.float64, rng=0)
    X, y = rng.standard_normal((500, 3)), rng.standard_normal((500, 1))
    W1, b1, W2, b2 = (p.data for p in model.parameters())
    # Put samples 1e-9 from the kinks of the first three units, where a finite-difference step of
    # the weights crosses them (central differences of the gradient are off there).
    for unit in range(3):
        X[unit] -= (X[unit] @ W1[unit] + b1[unit] - 1e-9) * W1[unit] / (W1[unit] @ W1[unit])
    mask = (X @ W1.T + b1) > 0
    sizes = [p.data.size for p in model.parameters()]
    shapes = [p.data.shape for p in model.parameters()]

    def frozen_loss(theta):
        w1, c1, w2, c2 = (
            part.reshape(shape) for part, shape in zip(np.split(theta, np.cumsum(sizes)[:-1]), shapes)
        )
        out = ((X @ w1.T + c1) * mask) @ w2.T + c2
        return np.mean((out - y) ** 2)

    theta, n, h = dg.parameters_to_vector(model), sum(sizes), 1e-4
    E = np.eye(n) * h
    independent = np.array(
        [
            [
                (
                    frozen_loss(theta + E[i] + E[j])
                    - frozen_loss(theta + E[i] - E[j])
                    - frozen_loss(theta - E[i] + E[j])
                    + frozen_loss(theta - E[i] - E[j])
                )
                / (4 * h * h)
                for j in range(n)
            ]
            for i in range(n)
        ]
    )
    H = dg.hessian(model, sp.MSELoss(), X, y)
    np.testing.assert_allclose(H, independent, atol=1e-6 * np.max(np.abs(independent)))
    differenced = dg.Objective(model, sp.MSELoss(), X, y, hvp="finite differences").hessian()
    assert np.max(np.abs(differenced - independent)) > 1e-3 * np.max(np.abs(independent))


def test_relu_hessian_vector_product_matches_pytorch_double_backward(rng):
    torch = pytest.importorskip("torch")
    model = sp.mlp([8, 100, 3], "relu", dtype=np.float64, rng=0)
    X, y = rng.standard_normal((4000, 8)), rng.integers(0, 3, 4000)  # many samples near kinks
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 100, dtype=torch.float64),
        torch.nn.ReLU(),
        torch.nn.Linear(100, 3, dtype=torch.float64),
    )
    with torch.no_grad():
        for p, q in zip(net.parameters(), model.parameters()):
            p.copy_(torch.from_numpy(q.data))
    params = list(net.parameters())
    v = rng.standard_normal(sum(p.numel() for p in params))
    pieces = [
        torch.from_numpy(part).reshape(p.shape)
        for part, p in zip(np.split(v, np.cumsum([p.numel() for p in params])[:-1]), params)
    ]
    loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y))
    grads = torch.autograd.grad(loss, params, create_graph=True)
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(grads, params, pieces)]).numpy()
    ours = dg.hessian_vector_product(model, sp.CrossEntropyLoss(), X, y, v)
    np.testing.assert_allclose(ours, expected, atol=1e-10 * np.max(np.abs(expected)))


def test_class_weighted_loss_is_averaged_exactly_over_chunks(rng):
    model = sp.mlp([4, 5, 2], "tanh", dtype=np.float64, rng=0)
    X = rng.standard_normal((50, 4))
    y = np.r_[np.zeros(40, int), np.ones(10, int)]  # the last chunk holds all of class 1
    loss = sp.CrossEntropyLoss(weight=[1.0, 5.0])
    whole = dg.Objective(model, loss, X, y, batch_size=50)
    chunked = dg.Objective(model, loss, X, y, batch_size=16)
    assert chunked.loss_at() == pytest.approx(whole.loss_at(), rel=1e-12)
    np.testing.assert_allclose(chunked.gradient()[1], whole.gradient()[1], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(chunked.hessian(), whole.hessian(), atol=1e-12)


class Softsign(sp.Module):
    """A layer with forward and backward only (no R-operator pair), as a user writes one."""

    def forward(self, x):
        self._x = x
        return x / (1 + np.abs(x))

    def backward(self, grad_output):
        return grad_output / (1 + np.abs(self._x)) ** 2


def test_models_without_an_r_operator_fall_back_to_finite_differences(rng):
    model = sp.Sequential(
        sp.Dense(3, 4, dtype=np.float64, rng=0),
        Softsign(),
        sp.Tanh(),
        sp.Dense(4, 2, dtype=np.float64, rng=1),
    )
    X, y = rng.standard_normal((20, 3)), rng.integers(0, 2, 20)
    objective = dg.Objective(model, sp.CrossEntropyLoss(), X, y)
    assert objective.hvp_method == "finite differences"
    with pytest.warns(UserWarning, match="Softsign"):
        point = dg.critical_point(model, sp.CrossEntropyLoss(), X, y)
    assert point.hessian_vector_product == "finite differences"
    with pytest.raises(ValueError, match="hvp='exact' needs a model of Dense"):
        dg.Objective(model, sp.CrossEntropyLoss(), X, y, hvp="exact")


def test_hard_sigmoid_network_stalled_on_xor_sits_on_a_degenerate_plateau():
    """From PyTorch's default init every hard-sigmoid unit stays in its linear part on the unit
    square, so the network is a linear model and SGD stalls at log 2. The doctor finds no
    negative curvature to escape along: a flat, degenerate critical point, not a saddle."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float64)
    y = np.array([0, 1, 1, 0])
    model = sp.Sequential(
        sp.Dense(2, 16, dtype=np.float64, rng=0), sp.HardSigmoid(), sp.Dense(16, 2, dtype=np.float64, rng=1)
    )
    trainer = sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        sp.SGD(model.parameters(), lr=0.5),
        batch_size=4,
        verbose=0,
        dtype=np.float64,
        seed=0,
    )
    history = trainer.fit(x, y, 2000)
    assert history["loss"][-1] == pytest.approx(np.log(2), abs=1e-8)
    point = dg.critical_point(model, sp.CrossEntropyLoss(), x, y)
    assert point.kind == "degenerate" and point.critical and point.negative == 0
    assert not dg.escape_saddle(model, sp.CrossEntropyLoss(), x, y).escaped


def test_exact_products_through_batch_norm_on_channels_and_length(rng):
    """(N, C, L) input: per-channel statistics over samples and positions."""
    model = sp.Sequential(sp.BatchNorm1d(3, dtype=np.float64), sp.Tanh(), sp.BatchNorm1d(3, dtype=np.float64))
    X, Y = rng.standard_normal((10, 3, 5)), rng.standard_normal((10, 3, 5))
    model.forward(X)
    for layer in (model[0], model[2]):
        layer.weight.data[:] = rng.uniform(0.5, 2, 3)
        layer.bias.data[:] = rng.standard_normal(3)
    exact = dg.Objective(model, sp.MSELoss(), X, Y)
    assert exact.hvp_method == "exact"
    H = dg.Objective(model, sp.MSELoss(), X, Y, hvp="finite differences").hessian()
    np.testing.assert_allclose(exact.hessian(), H, atol=1e-8 * np.max(np.abs(H)))


def test_exact_products_with_probability_targets(rng):
    model = sp.mlp([4, 6, 3], "sigmoid", dtype=np.float64, rng=0)
    X = rng.standard_normal((25, 4))
    P = rng.dirichlet(np.ones(3), 25)
    loss = sp.CrossEntropyLoss(label_smoothing=0.05)
    H = dg.Objective(model, loss, X, P, hvp="finite differences").hessian()
    np.testing.assert_allclose(dg.Objective(model, loss, X, P).hessian(), H, atol=1e-8 * np.max(np.abs(H)))


def test_a_large_common_logit_offset_leaves_the_hessian_unchanged(rng):
    """Cross-entropy ignores a constant added to every logit of a row, so shifting the output
    bias changes nothing: the exact Hessian must not drift with the offset either."""
    model, loss, X, y = tiny_tanh_network()
    H = dg.hessian(model, loss, X, y)
    model[2].bias.data += 1e4
    np.testing.assert_allclose(dg.hessian(model, loss, X, y), H, atol=1e-9 * np.max(np.abs(H)))


def test_subclasses_of_supported_layers_fall_back_to_finite_differences(rng):
    class Doubled(sp.Dense):
        def forward(self, x):
            return 2 * super().forward(x)

    model = sp.Sequential(
        Doubled(3, 4, dtype=np.float64, rng=0), sp.Tanh(), sp.Dense(4, 2, dtype=np.float64, rng=1)
    )
    X, y = rng.standard_normal((20, 3)), rng.integers(0, 2, 20)
    assert dg.Objective(model, sp.CrossEntropyLoss(), X, y).hvp_method == "finite differences"


# --- budgets, convergence and honest answers ------------------------------------------------------


def wide_network_on_few_samples():
    """26,253 parameters fitted to 30 samples: the over-parameterized case, whose spectrum
    crowds around zero."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 20)), rng.integers(0, 3, 30)
    model = sp.mlp([20, 150, 150, 3], "tanh", dtype=np.float64, rng=0)
    trainer = sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        sp.Adam(model.parameters(), lr=1e-2),
        batch_size=30,
        verbose=0,
        seed=0,
        dtype=np.float64,
    )
    trainer.fit(X, y, 60)
    return model, sp.CrossEntropyLoss(), X, y


@pytest.fixture(scope="module")
def wide():
    return wide_network_on_few_samples()


def test_critical_point_of_a_wide_network_stops_within_its_budget_and_says_so(wide):
    model, loss, X, y = wide
    assert sum(p.data.size for p in model.parameters()) == 26253
    for max_hvps, tolerance in ((40, 1e-10), (400, 1e-3)):
        point = dg.critical_point(model, loss, X, y, max_hvps=max_hvps, residual_tolerance=tolerance)
        assert point.method == "lanczos" and 0 < point.hvps <= max_hvps
        scale = np.max(np.abs(point.eigenvalues))
        # converged exactly when both Ritz residuals meet the tolerance
        assert point.converged == bool(np.all(point.residuals <= tolerance * scale))
        data = point.to_dict()
        assert data["hvps"] == point.hvps and data["converged"] == point.converged
        assert len(data["residuals"]) == 2 and data["stopped"] == point.stopped
        if not point.converged:
            assert f"budget of {max_hvps} HVPs" in point.stopped
            assert f"NOT converged: stopped by the {point.stopped}" in str(point)
            assert "a positive one proves nothing until it converges" in str(point)
    assert not dg.critical_point(model, loss, X, y, max_hvps=40, residual_tolerance=1e-10).converged
    assert dg.critical_point(model, loss, X, y, max_hvps=400).converged
    # the extremes converge within their half; the density's 10 × 100 steps do not fit in the rest
    point = dg.critical_point(model, loss, X, y, max_hvps=100)
    assert point.converged and point.hvps <= 100 and point.stopped == "budget of 100 HVPs"
    assert point.density.runs * min(point.density.steps) < 1000 and not point.density.converged
    assert "converged" in str(
        point
    ) and "SLQ density of the minimum ratio was cut short by the budget" in str(point)


def test_lanczos_residuals_are_the_true_residuals_of_the_ritz_pairs(wide):
    model, loss, X, y = wide
    objective = dg.Objective(model, loss, X, y)
    found = dg.top_eigenvalues(
        model, loss, X, y, k=1, which="smallest", max_hvps=25, residual_tolerance=1e-10
    )
    assert found.hvps == 25 and not found.converged and "budget of 25 HVPs" in found.stopped
    escape = dg.escape_saddle(
        sp.Sequential(*[layer for layer in model]), loss, X, y, max_hvps=30, residual_tolerance=1e-10
    )
    u, value = escape.direction, escape.eigenvalue
    true_residual = np.linalg.norm(objective.hessian_vector_product(u) - value * u)
    assert escape.residual == pytest.approx(true_residual, rel=1e-3)
    assert escape.residual > 0  # 15 steps do not converge on 26,253 parameters


def test_a_time_limit_stops_after_the_first_batch(wide):
    model, loss, X, y = wide
    found = dg.top_eigenvalues(model, loss, X, y, time_limit=1e-9)
    assert found.hvps == 1 and not found.converged and "time limit of 1e-09 s" in found.stopped
    estimate = dg.trace(model, loss, X, y, samples=50, time_limit=1e-9)
    assert estimate.samples == estimate.hvps == 8 and not estimate.converged
    assert "8 of 50 samples" in str(estimate) and estimate.standard_error > 0


def test_trace_and_density_stop_at_their_budget(wide):
    model, loss, X, y = wide
    estimate = dg.trace(model, loss, X, y, samples=100, max_hvps=20)
    assert estimate.samples == estimate.hvps == 20 and not estimate.converged
    assert estimate.stopped == "budget of 20 HVPs" and estimate.to_dict()["requested"] == 100
    density = dg.spectral_density(model, loss, X, y, steps=50, vectors=4, max_hvps=30)
    assert density.hvps <= 30 and not density.converged and density.stopped == "budget of 30 HVPs"
    full = dg.spectral_density(model, loss, X, y, steps=5, vectors=2)
    assert full.converged and full.steps == [5, 5] and full.hvps == 10 and full.stopped is None


def test_a_point_that_is_not_critical_gets_no_critical_point_kind():
    model, loss, X, y = tiny_tanh_network()  # untrained: the gradient is far from zero
    for method in ("full", "lanczos"):
        point = dg.critical_point(model, loss, X, y, method=method)
        assert not point.critical and point.kind == "not a critical point"
        assert point.curvature == "indefinite"
        text = str(point)
        assert text.startswith("not a critical point")
        for kind in ("saddle point", "local minimum", "local maximum", "degenerate"):
            assert kind not in text and kind not in point.headline()
    model, loss, X, y = worked_example()
    point = dg.critical_point(model, loss, X, y)
    assert point.critical and point.kind == "saddle point" and point.curvature == "indefinite"


@pytest.mark.parametrize(
    "signs, curvature",
    [
        ((True, True, False), "indefinite"),
        ((True, False, False), "positive definite"),
        ((False, True, False), "negative definite"),
        ((True, False, True), "positive semidefinite"),
        ((False, True, True), "negative semidefinite"),
        ((False, False, True), "zero"),
    ],
)
def test_curvature_words(signs, curvature):
    from saddlepoint.diagnose.curvature import _curvature

    assert _curvature(*signs) == curvature


def test_analyses_hold_blas_to_one_thread_and_show_progress_when_asked(capsys):
    from threadpoolctl import threadpool_info

    from saddlepoint.diagnose.budget import Budget

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    with Budget(10, 5.0, progress=False):
        assert set(blas_threads()) == {1}
    assert blas_threads() == before
    model, loss, X, y = tiny_tanh_network()
    dg.top_eigenvalues(model, loss, X, y, progress=True)
    assert "top eigenvalues" in capsys.readouterr().err
    dg.top_eigenvalues(model, loss, X, y)  # stderr is not a terminal here: no bar
    assert capsys.readouterr().err == ""


def test_budget_arguments_are_checked():
    model, loss, X, y = tiny_tanh_network()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_hvps must be a positive integer"):
            dg.critical_point(model, loss, X, y, max_hvps=bad)
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="time_limit must be a positive number"):
            dg.trace(model, loss, X, y, time_limit=bad)
    with pytest.raises(ValueError, match="max_hvps must be at least 2 for a trace estimate, got 1"):
        dg.trace(model, loss, X, y, max_hvps=1)
    with pytest.raises(ValueError, match="residual_tolerance must be in"):
        dg.top_eigenvalues(model, loss, X, y, residual_tolerance=2)
    with pytest.raises(ValueError, match="method='full' needs 31 Hessian-vector products"):
        dg.critical_point(model, loss, X, y, method="full", max_hvps=10)
    with pytest.raises(ValueError, match="time_limit must be .* fits a float, got an integer too large"):
        dg.critical_point(model, loss, X, y, time_limit=10**400)
    for bad in (float("nan"), -1e-3, float("inf"), "x", None, True):
        with pytest.raises(ValueError, match=f"gradient_tolerance must be a finite number >= 0, got {bad!r}"):
            dg.critical_point(model, loss, X, y, gradient_tolerance=bad)


def test_budget_takes_numpy_scalars_like_python_numbers():
    model, loss, X, y = tiny_tanh_network()
    ours = dg.critical_point(
        model,
        loss,
        X,
        y,
        max_hvps=np.int64(100),
        time_limit=np.float32(60),
        gradient_tolerance=np.float64(1e-3),
    )
    theirs = dg.critical_point(model, loss, X, y, max_hvps=100, time_limit=60.0)
    assert (ours.kind, ours.hvps) == (theirs.kind, theirs.hvps)
    np.testing.assert_array_equal(ours.eigenvalues, theirs.eigenvalues)
    with pytest.raises(ValueError, match="max_hvps must be a positive integer, got np.True_"):
        dg.critical_point(model, loss, X, y, max_hvps=np.True_)


def test_lanczos_on_a_spectrum_crowded_at_zero_is_honest_against_the_full_spectrum():
    # 1,013 parameters, 20 samples: the Hessian has rank at most about 60, the rest is zero.
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((20, 10)), rng.integers(0, 3, 20)
    model = sp.mlp([10, 30, 20, 3], "tanh", dtype=np.float64, rng=1)
    loss = sp.CrossEntropyLoss()
    spectrum = np.linalg.eigvalsh(dg.hessian(model, loss, X, y))
    rounding = 1e-9 * np.max(np.abs(spectrum))  # the products' own error is about 1e-10
    for max_hvps in (30, 2000):
        point = dg.critical_point(model, loss, X, y, method="lanczos", max_hvps=max_hvps)
        low, high = point.eigenvalues
        # Ritz values are Rayleigh quotients: inside the spectrum, whatever the convergence ...
        assert spectrum[0] - rounding <= low <= high <= spectrum[-1] + rounding
        # ... and each lies within its residual of an eigenvalue.
        for value, residual in zip(point.eigenvalues, point.residuals):
            assert np.min(np.abs(spectrum - value)) <= residual + rounding
        assert point.hvps <= max_hvps
    assert point.converged and abs(high - spectrum[-1]) <= point.residuals[-1] + rounding


def test_full_spectrum_too_slow_for_the_time_limit_hands_over_to_lanczos():
    model, loss, X, y = trained_small_network(hidden=40)  # 323 parameters: full by default
    point = dg.critical_point(model, loss, X, y, time_limit=1e-9)
    # the first 64 columns showed the rest would not fit: Lanczos took over, with one product
    assert point.method == "lanczos" and point.hvps == 64 + 1 and not point.converged
    assert point.stopped == "time limit of 1e-09 s" and np.isnan(point.minimum_ratio)
    assert point.to_dict()["minimum_ratio"] is None and "minimum ratio not estimated" in str(point)
    assert point.curvature != "indefinite" and point.headline().endswith(
        "(unconfirmed: Lanczos did not converge)"
    )
    # an explicit method="full" is all or nothing, as when n > max_hvps: ValueError, not OSError
    with pytest.raises(
        ValueError, match="method='full' would take about .* raise time_limit or use method='lanczos'"
    ):
        dg.critical_point(model, loss, X, y, method="full", time_limit=1e-9)
