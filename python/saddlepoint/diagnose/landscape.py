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
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..layers import Module
from .curvature import _extreme_eigenpairs
from .objective import Objective, parameters_to_vector


def _point(source, objective: Objective, name: str) -> np.ndarray:
    point = parameters_to_vector(source) if isinstance(source, Module) else np.asarray(source, np.float64)
    if point.shape != (objective.size,):
        raise ValueError(f"{name} must be a model of the same architecture or a vector of "
                         f"{objective.size} values, got shape {point.shape}")
    return point.astype(np.float64)


@dataclass
class Landscape1D:
    """``losses[i]`` is the loss at ``(1 − alphas[i])·start + alphas[i]·end``."""

    alphas: np.ndarray
    losses: np.ndarray

    def plot(self, ax=None):
        """Draws the loss along the line; needs matplotlib."""
        import matplotlib.pyplot as plt

        ax = ax or plt.figure().gca()
        ax.plot(self.alphas, self.losses)
        for a in (0, 1):
            ax.axvline(a, color="gray", linewidth=0.5)
        ax.set(xlabel="α (0: start, 1: end)", ylabel="loss", title="loss along a line")
        return ax


def loss_landscape_1d(model, loss, X, y, start, end, *, steps: int = 51,
                      margin: float = 0.25) -> Landscape1D:
    """The loss along the line from ``start`` to ``end`` (models of ``model``'s architecture or
    parameter vectors), for α from ``-margin`` to ``1 + margin``."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    objective = Objective(model, loss, X, y)
    a, b = _point(start, objective, "start"), _point(end, objective, "end")
    alphas = np.linspace(-margin, 1 + margin, steps)
    return Landscape1D(alphas, np.array([objective.loss_at((1 - t) * a + t * b) for t in alphas]))


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
            np.linalg.norm(d, axis=1, keepdims=True), 1e-300)
        parts.append(d.ravel())
    return np.concatenate(parts)


@dataclass
class Landscape2D:
    """``losses[i, j]`` is the loss at ``center + alphas[i]·directions[0] + betas[j]·directions[1]``."""

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    directions: np.ndarray = field(repr=False)

    def plot(self, ax=None, levels: int = 30):
        """Draws contours of the (log) loss around the center; needs matplotlib."""
        import matplotlib.pyplot as plt

        ax = ax or plt.figure().gca()
        contour = ax.contour(self.alphas, self.betas, np.log10(np.maximum(self.losses.T, 1e-12)),
                             levels=levels)
        ax.figure.colorbar(contour, ax=ax, label="log10 loss")
        ax.plot([0], [0], "r*", markersize=10)
        ax.set(xlabel="direction 1", ylabel="direction 2",
               title="loss around the point (filter-normalized directions)")
        return ax


def loss_landscape_2d(model, loss, X, y, *, center=None, directions=None, span: float = 1.0,
                      steps: int = 21, seed=0) -> Landscape2D:
    """The loss on a ``steps × steps`` grid of ``[-span, span]²`` around ``center`` (default:
    ``model``'s parameters) along two ``directions`` (default: filter-normalized random ones)."""
    if steps < 2 or not span > 0:
        raise ValueError(f"steps must be at least 2 and span > 0, got {steps} and {span}")
    objective = Objective(model, loss, X, y)
    center = objective.point if center is None else _point(center, objective, "center")
    if directions is None:
        rng = np.random.default_rng(seed)
        directions = np.stack([filter_normalized_direction(objective.model, rng) for _ in range(2)])
    directions = np.asarray(directions, dtype=np.float64)
    if directions.shape != (2, objective.size):
        raise ValueError(f"directions must have shape (2, {objective.size}), got {directions.shape}")
    grid = np.linspace(-span, span, steps)
    losses = np.array([[objective.loss_at(center + a * directions[0] + b * directions[1])
                        for b in grid] for a in grid])
    return Landscape2D(grid, grid.copy(), losses, directions)


@dataclass
class Sharpness:
    """``top_eigenvalue`` of the Hessian, and the mean (and largest) increase of the loss over
    ``samples`` random perturbations whose norm, per parameter tensor, is ``radius`` times the
    tensor's norm."""

    loss: float
    top_eigenvalue: float
    perturbed_increase: float
    perturbed_max_increase: float
    radius: float
    samples: int


def sharpness(model, loss, X, y, *, radius: float = 0.05, samples: int = 10, seed=0) -> Sharpness:
    """How sharp the minimum ``model`` sits in is (see :class:`Sharpness`)."""
    if not radius > 0 or samples < 1:
        raise ValueError(f"radius must be > 0 and samples at least 1, got {radius} and {samples}")
    objective = Objective(model, loss, X, y)
    rng = np.random.default_rng(seed)
    base = objective.loss_at()
    top = float(_extreme_eigenpairs(objective, "LA", 1, seed)[0][-1])
    bounds = np.cumsum([0] + [p.data.size for p in objective.parameters])
    norms = [np.linalg.norm(objective.point[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    increases = []
    for _ in range(samples):
        parts = []
        for size, norm in zip(np.diff(bounds), norms):
            d = rng.standard_normal(size)
            parts.append(d * (radius * norm / max(np.linalg.norm(d), 1e-300)))
        increases.append(objective.loss_at(objective.point + np.concatenate(parts)) - base)
    return Sharpness(base, top, float(np.mean(increases)), float(np.max(increases)), radius, samples)


@dataclass
class BatchSizeStudy:
    """One row per batch size: time per epoch and per update, final training and validation
    loss and metric, and the sharpness of the minimum reached."""

    metric: str
    epochs: int
    rows: list

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def __str__(self) -> str:
        head = (f"{'batch':>6} {'s/epoch':>9} {'ms/update':>10} {'updates':>8} {'train loss':>11} "
                f"{'val loss':>9} {'train ' + self.metric:>15} {'val ' + self.metric:>13} "
                f"{'top eig':>9} {'perturbed +loss':>16}")
        lines = [f"batch-size study, {self.epochs} epochs each", head]
        for r in self.rows:
            lines.append(f"{r['batch_size']:>6} {r['seconds_per_epoch']:>9.3f} "
                         f"{1e3 * r['seconds_per_update']:>10.3f} {r['updates_per_epoch']:>8} "
                         f"{r['train_loss']:>11.4f} {r['val_loss']:>9.4f} {r['train_metric']:>15.4f} "
                         f"{r['val_metric']:>13.4f} {r['top_eigenvalue']:>9.4g} "
                         f"{r['perturbed_increase']:>16.4g}")
        return "\n".join(lines)


def batch_size_study(model_factory, X, y, *, batch_sizes=(16, 64, 256, 1024), validation_data=None,
                     validation_split: float = 0.2, task: str | None = None, optimizer=None,
                     epochs: int = 20, radius: float = 0.05, perturbations: int = 10,
                     sharpness_samples: int = 1000, seed=0) -> BatchSizeStudy:
    """Trains a fresh ``model_factory()`` once per batch size, for the same number of epochs
    with the same optimizer, and measures each run (see :class:`BatchSizeStudy`).

    The sharpness is measured on at most ``sharpness_samples`` training samples. ``optimizer``
    is a function ``parameters -> Optimizer`` (default ``SGD(lr=0.1)``, the course's setting where
    batch size matters); ``task`` is inferred from ``y`` by default.
    """
    from ..optim import SGD
    from ..trainer import Trainer
    from .guide import _dtype_of, prepare_data

    if isinstance(model_factory, Module) or not callable(model_factory):
        raise TypeError(f"model_factory must be a function returning a fresh Module, got "
                        f"{type(model_factory).__name__}")
    sizes = [int(b) for b in batch_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"batch_sizes must be positive integers, got {list(batch_sizes)}")
    data = prepare_data(X, y, validation_data, validation_split, task=task, seed=seed)
    (X, y), (X_val, y_val), loss, metric = data.train, data.val, data.loss, data.metric
    make_optimizer = optimizer or (lambda params: SGD(params, lr=0.1))
    pick = np.random.default_rng(seed).permutation(len(X))[:sharpness_samples]
    rows = []
    for batch_size in sizes:
        model = model_factory()
        trainer = Trainer(model, loss, make_optimizer(model.parameters()), metrics=[metric],
                          batch_size=batch_size, seed=seed, verbose=0, dtype=_dtype_of(model))
        begin = time.perf_counter()
        trainer.fit(X, y, epochs)
        seconds = (time.perf_counter() - begin) / epochs
        train, val = trainer.evaluate(X, y), trainer.evaluate(X_val, y_val)
        sharp = sharpness(model, loss, X[pick], y[pick], radius=radius, samples=perturbations, seed=seed)
        updates = math.ceil(len(X) / batch_size)
        rows.append({"batch_size": batch_size, "seconds_per_epoch": seconds,
                     "seconds_per_update": seconds / updates, "updates_per_epoch": updates,
                     "train_loss": train["loss"], "val_loss": val["loss"],
                     "train_metric": train[metric], "val_metric": val[metric],
                     "top_eigenvalue": sharp.top_eigenvalue,
                     "perturbed_increase": sharp.perturbed_increase})
    return BatchSizeStudy(metric, epochs, rows)
