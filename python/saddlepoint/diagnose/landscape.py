"""The error surface around a trained model, and the course's small-vs-large batch study.

- :func:`loss_landscape_1d`: the loss along the line between two parameter vectors (e.g. two
  minima, or the initial and the trained weights).
- :func:`loss_landscape_2d`: the loss on a grid around a point along two random directions,
  filter-normalized as in Li et al., "Visualizing the Loss Landscape of Neural Nets" (2018): each
  row (output unit) of a weight matrix gets the norm of the same row of the weights, and 1-D
  parameters (biases, normalization) get zero, so the picture does not depend on the weights'
  scale.
- :func:`sharpness`: the top Hessian eigenvalue and the mean loss increase under random weight
  perturbations of a given relative size; flat minima have small values of both.
- :func:`batch_size_study`: the course's table of small against large batches, measured.

Each runs under a budget of wall time (``time_limit``; Hessian-vector products too where it
uses them), shows progress on a terminal and says in its result whether it finished: a
landscape cut short holds NaN where it was not evaluated.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .._jobs import check_n_jobs, run_jobs
from ..data.splits import prepare_data
from ..nn import Module
from ..optim import SGD
from ..training import Callback, Trainer
from .budget import MAX_HVPS, TIME_LIMIT, Budget, check_budget, one_blas_thread
from .curvature import RESIDUAL_TOLERANCE, TOLERANCES, extreme_eigenpairs
from .objective import Objective, parameters_to_vector


def _point(source, objective: Objective, name: str) -> np.ndarray:
    point = parameters_to_vector(source) if isinstance(source, Module) else np.asarray(source, np.float64)
    if point.shape != (objective.size,):
        raise ValueError(
            f"{name} must be a model of the same architecture or a vector of "
            f"{objective.size} values, got shape {point.shape}"
        )
    return point.astype(np.float64)


@dataclass
class Landscape1D:
    """``losses[i]`` is the loss at ``(1 − alphas[i])·start + alphas[i]·end`` (NaN where the
    time limit, ``stopped``, came first; ``complete`` otherwise)."""

    alphas: np.ndarray
    losses: np.ndarray
    complete: bool = True
    seconds: float = 0.0
    stopped: str | None = None

    def to_dict(self) -> dict:
        return {
            "alphas": self.alphas.tolist(),
            "losses": self.losses.tolist(),
            "complete": self.complete,
            "seconds": self.seconds,
            "stopped": self.stopped,
        }

    def __str__(self) -> str:
        return (
            f"loss along a line: {len(self.alphas)} points, losses from {np.nanmin(self.losses):.6g} "
            f"to {np.nanmax(self.losses):.6g}; {_finished(self)}"
        )

    def plot(self, ax=None):
        """Draws the loss along the line; needs matplotlib."""
        import matplotlib.pyplot as plt

        ax = ax or plt.figure().gca()
        ax.plot(self.alphas, self.losses)
        for a in (0, 1):
            ax.axvline(a, color="gray", linewidth=0.5)
        ax.set(xlabel="α (0: start, 1: end)", ylabel="loss", title="loss along a line")
        return ax


def loss_landscape_1d(
    model,
    loss,
    X,
    y,
    start,
    end,
    *,
    steps: int = 51,
    margin: float = 0.25,
    time_limit: float = TIME_LIMIT,
    progress=None,
) -> Landscape1D:
    """The loss along the line from ``start`` to ``end`` (models of ``model``'s architecture or
    parameter vectors), for α from ``-margin`` to ``1 + margin``, within ``time_limit``
    seconds (``progress``: a bar on stderr; None: when stderr is a terminal).

    Examples
    --------
    The loss on the line from the model to the origin of parameter space:

    >>> from saddlepoint import diagnose
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3))
    >>> y = (X @ np.array([1.0, -2.0, 0.5]))[:, None]
    >>> model = sp.Dense(3, 1, dtype=np.float64, rng=0)  # MSE on a linear model: H = 2 XᵀX / n
    >>> start = diagnose.parameters_to_vector(model).copy()
    >>> line = diagnose.loss_landscape_1d(model, sp.MSELoss(), X, y, start, np.zeros(4), steps=5)
    >>> line.alphas.tolist()
    [-0.25, 0.125, 0.5, 0.875, 1.25]
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    check_budget(1, time_limit)
    objective = Objective(model, loss, X, y)
    a, b = _point(start, objective, "start"), _point(end, objective, "end")
    alphas = np.linspace(-margin, 1 + margin, steps)
    losses, complete, seconds, stopped = _evaluate(
        [(1 - t) * a + t * b for t in alphas], objective, time_limit, progress, "landscape 1-D"
    )
    return Landscape1D(alphas, losses, complete, seconds, stopped)


def _evaluate(points, objective: Objective, time_limit, progress, description):
    """The loss at each point until ``time_limit`` runs out (NaN after): ``(losses, complete,
    seconds, stopped)``."""
    losses = np.full(len(points), np.nan)
    with Budget(len(points), time_limit, progress, description, unit="loss") as budget:
        for i, point in enumerate(points):
            if not budget.allows(1):
                break
            losses[i] = objective.loss_at(point)
            budget.spend(1)
        complete = budget.used == len(points)
        return losses, complete, round(budget.seconds, 3), None if complete else budget.stop_reason()


def _finished(result) -> str:
    if result.complete:
        return f"complete ({result.seconds:.1f} s)"
    return f"NOT complete: stopped by the {result.stopped} ({result.seconds:.1f} s)"


def filter_normalized_direction(model, rng) -> np.ndarray:
    """A random Gaussian direction with each weight row scaled to the norm of that row of
    ``model``'s weights, and zeros for 1-D parameters (Li et al. 2018)."""
    parts = []
    for p in model.parameters():
        if p.data.ndim < 2:
            parts.append(np.zeros(p.data.size))
            continue
        weights = p.data.reshape(p.data.shape[0], -1).astype(np.float64)
        d = rng.standard_normal(weights.shape)
        d *= np.linalg.norm(weights, axis=1, keepdims=True) / np.maximum(
            np.linalg.norm(d, axis=1, keepdims=True), 1e-300
        )
        parts.append(d.ravel())
    return np.concatenate(parts)


@dataclass
class Landscape2D:
    """``losses[i, j]`` is the loss at ``center + alphas[i]·directions[0] + betas[j]·directions[1]``
    (NaN where the time limit, ``stopped``, came first; ``complete`` otherwise)."""

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    directions: np.ndarray = field(repr=False)
    complete: bool = True
    seconds: float = 0.0
    stopped: str | None = None

    def to_dict(self) -> dict:
        return {
            "alphas": self.alphas.tolist(),
            "betas": self.betas.tolist(),
            "losses": self.losses.tolist(),
            "complete": self.complete,
            "seconds": self.seconds,
            "stopped": self.stopped,
        }

    def __str__(self) -> str:
        return (
            f"loss on a {len(self.alphas)}×{len(self.betas)} grid: from {np.nanmin(self.losses):.6g} "
            f"to {np.nanmax(self.losses):.6g}; {_finished(self)}"
        )

    def plot(self, ax=None, levels: int = 30):
        """Draws contours of the (log) loss around the center; needs matplotlib."""
        import matplotlib.pyplot as plt

        ax = ax or plt.figure().gca()
        contour = ax.contour(
            self.alphas, self.betas, np.log10(np.maximum(self.losses.T, 1e-12)), levels=levels
        )
        ax.figure.colorbar(contour, ax=ax, label="log10 loss")
        ax.plot([0], [0], "r*", markersize=10)
        ax.set(
            xlabel="direction 1",
            ylabel="direction 2",
            title="loss around the point (filter-normalized directions)",
        )
        return ax


def loss_landscape_2d(
    model,
    loss,
    X,
    y,
    *,
    center=None,
    directions=None,
    span: float = 1.0,
    steps: int = 21,
    seed=0,
    time_limit: float = TIME_LIMIT,
    progress=None,
) -> Landscape2D:
    """The loss on a ``steps × steps`` grid of ``[-span, span]²`` around ``center`` (default:
    ``model``'s parameters) along two ``directions`` (default: filter-normalized random ones),
    within ``time_limit`` seconds (``progress``: a bar on stderr; None: when stderr is a
    terminal).

    Examples
    --------
    >>> from saddlepoint import diagnose
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3))
    >>> y = (X @ np.array([1.0, -2.0, 0.5]))[:, None]
    >>> model = sp.Dense(3, 1, dtype=np.float64, rng=0)  # MSE on a linear model: H = 2 XᵀX / n
    >>> surface = diagnose.loss_landscape_2d(model, sp.MSELoss(), X, y, steps=5, span=0.5)
    >>> surface.losses.shape
    (5, 5)
    """
    if steps < 2 or not span > 0:
        raise ValueError(f"steps must be at least 2 and span > 0, got {steps} and {span}")
    check_budget(1, time_limit)
    objective = Objective(model, loss, X, y)
    center = objective.point if center is None else _point(center, objective, "center")
    if directions is None:
        rng = np.random.default_rng(seed)
        directions = np.stack([filter_normalized_direction(objective.model, rng) for _ in range(2)])
    directions = np.asarray(directions, dtype=np.float64)
    if directions.shape != (2, objective.size):
        raise ValueError(f"directions must have shape (2, {objective.size}), got {directions.shape}")
    grid = np.linspace(-span, span, steps)
    points = [center + a * directions[0] + b * directions[1] for a in grid for b in grid]
    losses, complete, seconds, stopped = _evaluate(points, objective, time_limit, progress, "landscape 2-D")
    return Landscape2D(
        grid, grid.copy(), losses.reshape(steps, steps), directions, complete, seconds, stopped
    )


@dataclass
class Sharpness:
    """``top_eigenvalue`` of the Hessian (with its Ritz residual and whether Lanczos converged
    within the budget), and the mean (and largest) increase of the loss over ``samples`` random
    perturbations whose norm, per parameter tensor, is ``radius`` times the tensor's norm."""

    loss: float
    top_eigenvalue: float
    perturbed_increase: float
    perturbed_max_increase: float
    radius: float
    samples: int
    top_residual: float = 0.0
    converged: bool = True
    hvps: int = 0
    stopped: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        state = "converged" if self.converged else f"NOT converged: stopped by the {self.stopped}"
        return (
            f"top eigenvalue {self.top_eigenvalue:.4g} (residual {self.top_residual:.2g}, {state}, "
            f"{self.hvps} Hessian-vector products); loss +{self.perturbed_increase:.4g} on average "
            f"(+{self.perturbed_max_increase:.4g} at most) under {self.samples} perturbations of "
            f"relative size {self.radius:g}"
        )


def sharpness(
    model,
    loss,
    X,
    y,
    *,
    radius: float = 0.05,
    samples: int = 10,
    seed=0,
    residual_tolerance: float = RESIDUAL_TOLERANCE,
    max_hvps: int = MAX_HVPS,
    time_limit: float = TIME_LIMIT,
    progress=None,
) -> Sharpness:
    """How sharp the minimum ``model`` sits in is (see :class:`Sharpness`); the top eigenvalue
    by Lanczos under ``max_hvps`` Hessian-vector products and ``time_limit`` seconds.

    Examples
    --------
    >>> from saddlepoint import diagnose
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3))
    >>> y = (X @ np.array([1.0, -2.0, 0.5]))[:, None]
    >>> model = sp.Dense(3, 1, dtype=np.float64, rng=0)  # MSE on a linear model: H = 2 XᵀX / n
    >>> result = diagnose.sharpness(model, sp.MSELoss(), X, y, samples=5)
    >>> result.top_eigenvalue > 0
    True
    """
    if not radius > 0 or samples < 1:
        raise ValueError(f"radius must be > 0 and samples at least 1, got {radius} and {samples}")
    TOLERANCES["residual_tolerance"].check("residual_tolerance", residual_tolerance)
    objective = Objective(model, loss, X, y)
    rng = np.random.default_rng(seed)
    base = objective.loss_at()
    with Budget(max_hvps, time_limit, progress, "sharpness") as budget:
        found = extreme_eigenpairs(objective, budget, "LA", 1, seed, residual_tolerance)
    top = float(found.values[-1])
    bounds = np.cumsum([0] + [p.data.size for p in objective.parameters])
    norms = [np.linalg.norm(objective.point[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    increases = []
    for _ in range(samples):
        parts = []
        for size, norm in zip(np.diff(bounds), norms):
            d = rng.standard_normal(size)
            parts.append(d * (radius * norm / max(float(np.linalg.norm(d)), 1e-300)))
        increases.append(objective.loss_at(objective.point + np.concatenate(parts)) - base)
    return Sharpness(
        base,
        top,
        float(np.mean(increases)),
        float(np.max(increases)),
        radius,
        samples,
        float(found.residuals[-1]),
        found.converged,
        budget.used,
        found.stopped,
    )


@dataclass
class BatchSizeStudy:
    """One row per batch size: time per epoch and per update, epochs trained, final training and
    validation loss and metric, and the sharpness of the minimum reached (top eigenvalue with its
    Ritz residual and convergence). ``complete`` is False when the time limit (``stopped``)
    ended the study early: a row then may have fewer epochs, and later batch sizes are missing."""

    metric: str
    epochs: int
    rows: list
    complete: bool = True
    seconds: float = 0.0
    stopped: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def __str__(self) -> str:
        head = (
            f"{'batch':>6} {'epochs':>6} {'s/epoch':>9} {'ms/update':>10} {'updates':>8} "
            f"{'train loss':>11} {'val loss':>9} {'train ' + self.metric:>15} "
            f"{'val ' + self.metric:>13} {'top eig':>9} {'residual':>9} {'perturbed +loss':>16}"
        )
        lines = [f"batch-size study, {self.epochs} epochs each; {_finished(self)}", head]
        for r in self.rows:
            lines.append(
                f"{r['batch_size']:>6} {r['epochs_trained']:>6} {r['seconds_per_epoch']:>9.3f} "
                f"{1e3 * r['seconds_per_update']:>10.3f} {r['updates_per_epoch']:>8} "
                f"{r['train_loss']:>11.4f} {r['val_loss']:>9.4f} {r['train_metric']:>15.4f} "
                f"{r['val_metric']:>13.4f} {r['top_eigenvalue']:>9.4g} "
                f"{r['top_residual']:>9.2g} {r['perturbed_increase']:>16.4g}"
            )
        return "\n".join(lines)


def _study_batch_size(
    batch_size,
    model_factory,
    train_data,
    val_data,
    loss,
    metric,
    make_optimizer,
    epochs,
    pick,
    radius,
    perturbations,
    max_hvps,
    time_limit,
    seed,
    deadline,
):
    """One row of :func:`batch_size_study`: a fresh model trained with ``batch_size`` until the
    study's ``deadline`` at most, and measured. The deadline is a wall-clock time
    (``time.time()``), so it holds in a worker that starts the job later than it was made."""
    (X, y), (X_val, y_val) = train_data, val_data
    clock = _Clock(deadline)
    with one_blas_thread():
        model = model_factory()
        trainer = Trainer(
            model,
            loss,
            make_optimizer(model.parameters()),
            metrics=[metric],
            batch_size=batch_size,
            seed=seed,
            verbose=0,
            callbacks=[_Deadline(clock)],
        )
        begin = time.perf_counter()
        trainer.fit(X, y, epochs)
        trained = max(1, trainer.epoch)
        seconds = (time.perf_counter() - begin) / trained
        train, val = trainer.evaluate(X, y), trainer.evaluate(X_val, y_val)
        sharp = sharpness(
            model,
            loss,
            X[pick],
            y[pick],
            radius=radius,
            samples=perturbations,
            seed=seed,
            max_hvps=max_hvps,
            time_limit=max(clock.time_left(), 0.05 * time_limit),
            progress=False,
        )
    updates = math.ceil(len(X) / batch_size)
    return {
        "batch_size": batch_size,
        "epochs_trained": trainer.epoch,
        "seconds_per_epoch": seconds,
        "seconds_per_update": seconds / updates,
        "updates_per_epoch": updates,
        "train_loss": train["loss"],
        "val_loss": val["loss"],
        "train_metric": train[metric],
        "val_metric": val[metric],
        "top_eigenvalue": sharp.top_eigenvalue,
        "top_residual": sharp.top_residual,
        "top_converged": sharp.converged,
        "perturbed_increase": sharp.perturbed_increase,
    }


class _Clock:
    """The seconds left until a wall-clock ``deadline`` (``time.time()``)."""

    def __init__(self, deadline: float):
        self.deadline = deadline

    def time_left(self) -> float:
        return self.deadline - time.time()


class _Deadline(Callback):
    """Stops training at the end of the epoch during which ``clock``'s time ran out."""

    def __init__(self, clock):
        self.clock = clock

    def on_epoch_end(self, trainer, epoch, logs):
        if self.clock.time_left() <= 0:
            trainer.stop_training = True


def batch_size_study(
    model_factory,
    X,
    y,
    *,
    batch_sizes=(16, 64, 256, 1024),
    validation_data=None,
    validation_split: float = 0.2,
    task: str | None = None,
    optimizer=None,
    epochs: int = 20,
    radius: float = 0.05,
    perturbations: int = 10,
    sharpness_samples: int = 1000,
    max_hvps: int = MAX_HVPS,
    time_limit: float = 600.0,
    progress=None,
    seed=0,
    n_jobs=None,
) -> BatchSizeStudy:
    """Trains a fresh ``model_factory()`` once per batch size, for the same number of epochs
    with the same optimizer, and measures each run (see :class:`BatchSizeStudy`).

    The sharpness is measured on at most ``sharpness_samples`` training samples, its top
    eigenvalue under ``max_hvps`` Hessian-vector products per batch size. The whole study stops
    after ``time_limit`` seconds (training ends with the epoch that crosses it; the result says
    so). ``optimizer`` is a function ``parameters -> Optimizer`` (default ``SGD(lr=0.1)``, the
    course's setting where batch size matters); ``task`` is inferred from ``y`` by default.

    ``n_jobs`` batch sizes are studied at once, through ``joblib.Parallel``, as scikit-learn's
    ``n_jobs`` (None: one at a time unless a ``joblib.parallel_config`` context says otherwise;
    on a Ray or Dask cluster under ``parallel_config(backend="ray" | "dask")``); ``model_factory``
    and ``optimizer`` must then be picklable by cloudpickle. Every batch size stops at the
    study's deadline; the rows are the serial run's exactly, but for the times.

    Parameters
    ----------
    model_factory : callable returning a fresh Module
    X : array_like, (n_samples, ...)
    y : array_like, (n_samples,) or (n_samples, n_outputs)
    batch_sizes : sequence of int
    validation_data : (X_val, y_val), optional
        Without it, ``validation_split`` of ``(X, y)`` is held out.
    validation_split : float
    task : {"classification", "regression"}, optional
    optimizer : callable ``parameters -> Optimizer``, optional
    epochs : int
    radius : float
        The relative size of the random perturbations that probe the minimum's flatness.
    perturbations : int
        Random perturbations per batch size.
    sharpness_samples, max_hvps, time_limit, progress, seed, n_jobs
        See above.

    Returns
    -------
    BatchSizeStudy
        One row per batch size: time per epoch and per update, losses, accuracy, the top Hessian
        eigenvalue (sharpness) and the loss increase under perturbation.

    Examples
    --------
    >>> from saddlepoint import diagnose
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(256, 2))
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> study = diagnose.batch_size_study(lambda: sp.mlp([2, 8, 2], rng=0), X, y,
    ...                                   batch_sizes=(8, 128), epochs=2, sharpness_samples=128)
    >>> [row["batch_size"] for row in study.rows]
    [8, 128]
    >>> study.rows[0]["updates_per_epoch"] > study.rows[1]["updates_per_epoch"]
    True
    """

    if isinstance(model_factory, Module) or not callable(model_factory):
        raise TypeError(
            f"model_factory must be a function returning a fresh Module, got {type(model_factory).__name__}"
        )
    sizes = [int(b) for b in batch_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"batch_sizes must be positive integers, got {list(batch_sizes)}")
    check_budget(max_hvps, time_limit)
    n_jobs = check_n_jobs(n_jobs)
    data = prepare_data(X, y, validation_data, validation_split, task=task, seed=seed)
    (X, y), (X_val, y_val), loss, metric = data.train, data.val, data.loss, data.metric
    make_optimizer = optimizer or (lambda params: SGD(params, lr=0.1))
    pick = np.random.default_rng(seed).permutation(len(X))[:sharpness_samples]
    settings = (model_factory, (X, y), (X_val, y_val), loss, metric, make_optimizer, epochs, pick)
    sharpness_settings = (radius, perturbations, max_hvps, time_limit, seed)
    rows = []
    with Budget(len(sizes), time_limit, progress, "batch sizes", unit="batch size") as budget:

        def studies():  # made as each is dispatched: none once the time is up
            for batch_size in sizes:
                if not budget.allows(1):
                    return
                yield (batch_size, *settings, *sharpness_settings, time.time() + budget.time_left())

        for row in run_jobs(_study_batch_size, studies(), n_jobs):
            rows.append(row)
            budget.spend(1)
        complete = len(rows) == len(sizes) and all(r["epochs_trained"] == epochs for r in rows)
        return BatchSizeStudy(
            metric,
            epochs,
            rows,
            complete,
            round(budget.seconds, 3),
            None if complete else budget.stop_reason(),
        )
