"""Loss landscapes, sharpness and the batch-size study."""

import json
import math

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

import saddlepoint as sp
from saddlepoint import diagnose as dg


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def trained(digits, seed=0, epochs=5):
    X, y = digits
    model = sp.mlp([64, 16, 10], rng=seed)
    sp.Trainer(model, sp.CrossEntropyLoss(), sp.Adam(model.parameters(), lr=1e-2), verbose=0, seed=seed).fit(
        X, y, epochs
    )
    return model


def test_line_between_two_models_passes_through_both(digits):
    X, y = digits
    a, b = trained(digits, 0), trained(digits, 1)
    line = dg.loss_landscape_1d(a, sp.CrossEntropyLoss(), X, y, a, b, steps=7, margin=0.25)
    np.testing.assert_allclose(line.alphas, [-0.25, 0, 0.25, 0.5, 0.75, 1, 1.25], atol=1e-15)
    loss_a = dg.Objective(a, sp.CrossEntropyLoss(), X, y).loss_at()
    loss_b = dg.Objective(b, sp.CrossEntropyLoss(), X, y).loss_at()
    assert line.losses[1] == pytest.approx(loss_a) and line.losses[5] == pytest.approx(loss_b)
    # Two minima found from different seeds are separated by a barrier (permutation symmetry).
    assert line.losses[3] > max(loss_a, loss_b)


def test_grid_is_centered_on_the_point_and_rises_around_a_minimum(digits):
    X, y = digits
    model = trained(digits)
    grid = dg.loss_landscape_2d(model, sp.CrossEntropyLoss(), X, y, steps=5, span=1.0)
    center = dg.Objective(model, sp.CrossEntropyLoss(), X, y).loss_at()
    assert grid.losses.shape == (5, 5) and grid.losses[2, 2] == pytest.approx(center)
    assert grid.losses[0, 0] > center and grid.losses[-1, -1] > center
    np.testing.assert_allclose(grid.alphas, [-1, -0.5, 0, 0.5, 1])


def test_filter_normalized_direction_matches_row_norms_and_skips_biases(digits):
    model = trained(digits)
    d = dg.filter_normalized_direction(model, np.random.default_rng(0))
    start = 0
    for p in model.parameters():
        part = d[start : start + p.data.size].reshape(p.data.shape)
        start += p.data.size
        if p.data.ndim == 1:
            assert np.all(part == 0)
        else:
            np.testing.assert_allclose(
                np.linalg.norm(part, axis=1), np.linalg.norm(p.data, axis=1), rtol=1e-5
            )


def test_sharpness_top_eigenvalue_is_the_lanczos_top_and_perturbations_raise_the_loss(digits):
    X, y = digits
    model = trained(digits)
    sharp = dg.sharpness(model, sp.CrossEntropyLoss(), X[:300], y[:300], radius=0.05, samples=5)
    top = np.linalg.eigvalsh(dg.hessian(model, sp.CrossEntropyLoss(), X[:300], y[:300]))[-1]
    assert sharp.top_eigenvalue == pytest.approx(top, rel=1e-6)
    assert sharp.perturbed_increase > 0 and sharp.perturbed_max_increase >= sharp.perturbed_increase


def test_sharpness_perturbations_have_the_stated_relative_size(digits, monkeypatch):
    X, y = digits
    model = trained(digits)
    objective = dg.Objective(model, sp.CrossEntropyLoss(), X[:50], y[:50])
    seen = []
    original = dg.Objective.loss_at

    def spy(self, theta=None):
        if theta is not None:
            seen.append(np.asarray(theta) - objective.point)
        return original(self, theta)

    monkeypatch.setattr(dg.Objective, "loss_at", spy)
    dg.sharpness(model, sp.CrossEntropyLoss(), X[:50], y[:50], radius=0.3, samples=3)
    assert len(seen) == 3
    sizes = np.cumsum([0] + [p.data.size for p in model.parameters()])
    for delta in seen:
        for a, b in zip(sizes[:-1], sizes[1:]):
            assert np.linalg.norm(delta[a:b]) == pytest.approx(0.3 * np.linalg.norm(objective.point[a:b]))


def test_batch_size_study_tabulates_every_batch_size(digits):
    X, y = digits
    study = dg.batch_size_study(
        lambda: sp.mlp([64, 32, 10], rng=0), X, y, batch_sizes=(8, 512), epochs=5, sharpness_samples=300
    )
    assert [r["batch_size"] for r in study.rows] == [8, 512]
    n_train = len(X) - math.ceil(0.2 * len(X))
    assert [r["updates_per_epoch"] for r in study.rows] == [math.ceil(n_train / 8), math.ceil(n_train / 512)]
    small, large = study.rows
    # The same epochs give the small batch 64× more updates: it ends lower (the course's table).
    assert small["train_loss"] < large["train_loss"] and small["val_metric"] > large["val_metric"]
    for r in study.rows:
        assert r["seconds_per_epoch"] > 0 and r["seconds_per_update"] > 0 and r["top_eigenvalue"] > 0
    assert json.loads(study.to_json())["rows"][0]["batch_size"] == 8
    assert "batch-size study" in str(study)


def test_landscape_arguments_are_checked(digits):
    X, y = digits
    model = trained(digits, epochs=1)
    with pytest.raises(ValueError, match="start must be a model of the same architecture"):
        dg.loss_landscape_1d(model, sp.CrossEntropyLoss(), X, y, np.zeros(3), model)
    with pytest.raises(ValueError, match="directions must have shape"):
        dg.loss_landscape_2d(model, sp.CrossEntropyLoss(), X, y, directions=np.zeros((2, 3)))
    with pytest.raises(TypeError, match="model_factory must be a function"):
        dg.batch_size_study(model, X, y)
    with pytest.raises(ValueError, match="batch_sizes must be positive"):
        dg.batch_size_study(lambda: model, X, y, batch_sizes=(0,))


def test_plots_draw_when_matplotlib_is_installed(digits):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X, y = digits
    model = trained(digits, epochs=1)
    loss = sp.CrossEntropyLoss()
    dg.loss_landscape_1d(model, loss, X, y, model, trained(digits, 1, epochs=1), steps=5).plot()
    dg.loss_landscape_2d(model, loss, X, y, steps=5).plot()
    dg.spectral_density(model, loss, X[:100], y[:100], steps=10, vectors=1).plot()


def test_landscapes_stop_at_their_time_limit_and_say_so(digits):
    X, y = digits
    model = trained(digits, epochs=1)
    loss = sp.CrossEntropyLoss()
    grid = dg.loss_landscape_2d(model, loss, X[:100], y[:100], steps=5, time_limit=1e-9)
    # the first point always runs; the rest is NaN, and the result says why
    assert not grid.complete and np.isfinite(grid.losses[0, 0]) and np.isnan(grid.losses).sum() == 24
    assert grid.stopped == "time limit of 1e-09 s" and "NOT complete" in str(grid)
    assert grid.to_dict()["complete"] is False
    line = dg.loss_landscape_1d(model, loss, X[:100], y[:100], model, model, steps=7)
    assert line.complete and line.stopped is None and np.all(np.isfinite(line.losses))
    assert "complete" in str(line)


def test_sharpness_reports_its_residual_and_budget(digits):
    X, y = digits
    model = trained(digits)
    sharp = dg.sharpness(
        model, sp.CrossEntropyLoss(), X[:100], y[:100], samples=2, max_hvps=3, residual_tolerance=1e-12
    )
    assert sharp.hvps == 3 and not sharp.converged and sharp.stopped == "budget of 3 HVPs"
    assert sharp.top_residual > 0 and "NOT converged" in str(sharp)
    sharp = dg.sharpness(model, sp.CrossEntropyLoss(), X[:100], y[:100], samples=2)
    assert sharp.converged and sharp.top_residual <= 1e-3 * sharp.top_eigenvalue
    assert sharp.to_dict()["hvps"] == sharp.hvps < 300


def test_batch_size_study_stops_at_its_time_limit(digits):
    X, y = digits
    study = dg.batch_size_study(
        lambda: sp.mlp([64, 16, 10], rng=0),
        X,
        y,
        batch_sizes=(64, 128, 256),
        epochs=5,
        sharpness_samples=100,
        time_limit=1e-9,
    )
    # the first batch size starts, its training stops after one epoch; nothing else runs
    assert [r["batch_size"] for r in study.rows] == [64] and study.rows[0]["epochs_trained"] == 1
    assert not study.complete and study.stopped == "time limit of 1e-09 s"
    assert "NOT complete" in str(study) and study.to_dict()["complete"] is False
