"""saddlepoint.plot: each figure function draws what it says with titles and labelled axes, checks
its input, and the package works without matplotlib."""

import numpy as np
import pytest

import saddlepoint as sp
from saddlepoint import diagnose as dg
from saddlepoint import plot


@pytest.fixture(scope="module")
def small_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = sp.mlp([3, 4, 2], rng=0)
    sp.Trainer(model, sp.CrossEntropyLoss(), sp.Adam(model.parameters(), lr=0.05), verbose=0, seed=0).fit(
        X, y, 5
    )
    return model, sp.CrossEntropyLoss(), X, y


@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def labelled(ax):
    return ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_learning_curves_draw_each_key_dashed_for_validation(pyplot):
    history = sp.History(
        {"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.7, 0.6], "val_accuracy": [0.5, 0.6, 0.7]}
    )
    ax = plot.plot_learning_curves(history, label="run A")
    assert [line.get_label() for line in ax.lines] == ["run A loss", "run A val_loss"]
    assert ax.lines[1].get_linestyle() == "--"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    assert labelled(ax)
    ax = plot.plot_learning_curves({"val_accuracy": [0.5, 0.6]}, keys=["val_accuracy"], log=True)
    assert ax.get_ylabel() == "val_accuracy" and ax.get_yscale() == "log"


def test_learning_curves_reject_bad_input():  # checked before matplotlib is needed
    with pytest.raises(ValueError, match=r"keys must name values the history holds \(\['loss'\]\)"):
        plot.plot_learning_curves({"loss": [1.0]}, keys=["accuracy"])
    with pytest.raises(TypeError, match="history must be a History or a mapping"):
        plot.plot_learning_curves([1.0, 2.0])


def test_hessian_spectrum_from_eigenvalues_a_critical_point_and_a_density(pyplot, small_problem):
    values = np.concatenate([np.zeros(20), np.linspace(-1, 3, 30)])
    ax = plot.plot_hessian_spectrum(values, bins=20)
    assert sum(p.get_height() for p in ax.patches) == values.size  # every eigenvalue counted
    assert [line.get_label() for line in ax.lines][0] == "smoothed density" and labelled(ax)
    critical = dg.critical_point(*small_problem, method="full")
    ax = plot.plot_hessian_spectrum(critical)
    assert critical.kind in ax.get_title().replace("\n", " ") and "minimum ratio" in ax.get_title()
    density = dg.spectral_density(*small_problem, steps=10, vectors=2, progress=False)
    ax = plot.plot_hessian_spectrum(density)
    assert ax.get_yscale() == "log" and "SLQ" in ax.get_title() and labelled(ax)
    with pytest.raises(ValueError, match="finite eigenvalues"):
        plot.plot_hessian_spectrum([np.nan, 1.0])


def test_landscapes_delegate_to_their_own_plots_with_a_title(pyplot, small_problem):
    model = small_problem[0]
    line = dg.loss_landscape_1d(*small_problem, model, np.zeros(26), steps=5, progress=False)
    ax = plot.plot_landscape_1d(line, title="to the origin")
    assert ax.get_title() == "to the origin" and labelled(ax)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), line.losses)
    grid = dg.loss_landscape_2d(*small_problem, steps=5, progress=False)
    ax = plot.plot_landscape_2d(grid, levels=5)
    assert "filter-normalized" in ax.get_title() and labelled(ax)


def test_trajectories_draw_each_path_over_the_surface(pyplot):
    paths = {"a": [[-1.0, 1.0], [-0.5, 0.2], [0.0, 0.0]], "b": np.array([[-1.0, 1.0], [0.1, -0.1]])}
    ax = plot.plot_trajectories(
        lambda w1, w2: w1**2 + 10 * w2**2 + 1, paths, minimum=(0, 0), labels=("a", "b")
    )
    drawn = {line.get_label(): line for line in ax.lines}
    np.testing.assert_array_equal(drawn["a"].get_xdata(), [-1.0, -0.5, 0.0])
    assert {"b", "start", "minimum"} <= set(drawn) and labelled(ax)
    low, high = ax.get_xlim()
    assert low < -1.0 and high > 0.1  # the window holds every path
    with pytest.raises(ValueError, match=r"paths\['a'\] must have shape \(steps, 2\), got \(3,\)"):
        plot.plot_trajectories(lambda w1, w2: w1, {"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="paths must be a non-empty mapping"):
        plot.plot_trajectories(lambda w1, w2: w1, {})


def study():
    rows = [
        {
            "batch_size": b,
            "seconds_per_epoch": 1.0 / b,
            "seconds_per_update": 0.001 * b,
            "train_metric": 0.9,
            "val_metric": 0.8,
            "top_eigenvalue": 10.0 / b,
        }
        for b in (16, 64, 256)
    ]
    return dg.BatchSizeStudy("accuracy", 3, rows)


def test_batch_size_study_has_four_labelled_panels(pyplot):
    axes = plot.plot_batch_size_study(study())
    assert len(axes) == 4 and all(labelled(ax) for ax in axes)
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), [16.0, 64.0, 256.0])  # milliseconds
    assert [line.get_label() for line in axes[2].lines] == ["train accuracy", "val accuracy"]
    assert axes[0].get_xscale() == "log"
    _, grid = pyplot.subplots(1, 2)
    with pytest.raises(ValueError, match="ax must be None or a sequence of 4 axes, got 2"):
        plot.plot_batch_size_study(study(), list(grid))


def test_save_figure_hands_draw_one_axes_or_a_list(pyplot, tmp_path):
    seen = []
    assert plot.save_figure(tmp_path / "one.png", seen.append)
    assert plot.save_figure(tmp_path / "grid.png", seen.append, nrows=2, ncols=3)
    assert not isinstance(seen[0], list) and len(seen[1]) == 6
    assert (tmp_path / "grid.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="nrows and ncols must be positive integers, got 0 and 1"):
        plot.save_figure(tmp_path / "bad.png", seen.append, nrows=0)


def test_save_figure_without_matplotlib_writes_nothing(tmp_path, without_matplotlib):
    assert plot.save_figure(tmp_path / "a.png", lambda ax: None) is False
    assert plot.save_plot(tmp_path / "b.png", lambda ax: None) is False
    assert not list(tmp_path.iterdir())
