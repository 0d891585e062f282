"""Lecture: adaptive learning rates (Hung-yi Lee, ML 2021, "training stuck is not always a critical
point" and "Adagrad, RMSProp, Adam, learning-rate scheduling").

On an elongated error surface, ``L(w) = (w1² + 50·w2²) / 2``, one learning rate cannot suit both
directions: steep along w2, flat along w1. Plain gradient descent must keep the rate below the
steep direction's limit (2/50) and then crawls along the flat one; momentum, Adagrad, RMSProp and
Adam give each direction its own effective step. Each of the library's optimizers runs from the
same start with its best learning rate from a grid, and the example counts the steps it needs to
come, and stay, within ``EPS`` of the minimum.

The second figure shows learning-rate scheduling on RMSProp: without warmup its first steps,
divided by a root mean square estimated from one gradient, overshoot far past the minimum;
without decay it never settles. ``LinearWarmup`` and ``ExponentialLR`` (through ``SequentialLR``)
fix one each.

    python examples/03_adaptive_learning_rates.py [--quick]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import finding, save_figure

from saddlepoint import SGD, Adagrad, Adam, ExponentialLR, LinearWarmup, Parameter, RMSprop, SequentialLR
from saddlepoint.plot import plot_trajectories

CURVATURE = np.array([1.0, 50.0])  # the Hessian's diagonal: condition number 50
START = np.array([-4.0, 1.5])
EPS = 1e-3
# The same settings in quick and full mode: the whole example takes a few seconds.
STEPS = 1000
LEARNING_RATES = np.logspace(-3, 0, 13)  # each optimizer runs with each; the best is reported

OPTIMIZERS = {
    "gradient descent": lambda params, lr: SGD(params, lr=lr),
    "momentum 0.9": lambda params, lr: SGD(params, lr=lr, momentum=0.9),
    "Adagrad": lambda params, lr: Adagrad(params, lr=lr),
    "RMSProp": lambda params, lr: RMSprop(params, lr=lr),
    "Adam": lambda params, lr: Adam(params, lr=lr),
}


def surface(w1, w2):
    return 0.5 * (CURVATURE[0] * w1**2 + CURVATURE[1] * w2**2)


def run(make_optimizer, lr, steps, schedule=None, rates=None) -> np.ndarray:
    """The parameters after each step of the optimizer (row 0: the start), shape (steps + 1, 2);
    the learning rate of each step is appended to ``rates`` when given."""
    w = Parameter(START.copy())
    optimizer = make_optimizer([w], lr)
    scheduler = schedule(optimizer) if schedule else None
    path = [w.data.copy()]
    with np.errstate(over="ignore", invalid="ignore"):  # a rate too large for the surface diverges
        for _ in range(steps):
            w.grad = CURVATURE * w.data  # the gradient of the quadratic
            if rates is not None:
                rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            path.append(w.data.copy())
    return np.array(path)


def steps_to_settle(path) -> int | None:
    """The first step from which the path stays within EPS of the minimum (the origin), or None."""
    with np.errstate(over="ignore", invalid="ignore"):
        outside = np.flatnonzero(~(np.linalg.norm(path, axis=1) < EPS))
    if len(outside) == 0:
        return 0
    return None if outside[-1] == len(path) - 1 else int(outside[-1] + 1)


best = {}
for name, make in OPTIMIZERS.items():
    settled = [(steps_to_settle(run(make, lr, STEPS)), lr) for lr in LEARNING_RATES]
    steps, lr = min(((s, lr) for s, lr in settled if s is not None), default=(None, None))
    best[name] = (steps, lr)
    if steps is None:
        finding(
            f"{name}: never settles within {EPS:g} of the minimum in {STEPS} steps at any learning rate tried"
        )
    else:
        finding(
            f"{name}: {steps} steps to settle within {EPS:g} of the minimum (best learning rate {lr:.3g})"
        )
gd, adam = best["gradient descent"][0], best["Adam"][0]
if gd is not None and adam is not None:
    finding(f"Adam needs {gd / adam:.1f}x fewer steps than gradient descent ({adam} vs {gd})")

# Scheduling, on RMSProp at learning rate 1.
WARMUP, DECAY, SCHEDULE_STEPS = 20, 0.97, 300
schedules = {
    "constant": None,
    "warmup": lambda opt: LinearWarmup(opt, WARMUP),
    "decay": lambda opt: ExponentialLR(opt, DECAY),
    "warmup + decay": lambda opt: SequentialLR(
        opt, [LinearWarmup(opt, WARMUP), ExponentialLR(opt, DECAY)], [WARMUP]
    ),
}
rates: dict[str, list] = {name: [] for name in schedules}
distance = {
    name: np.linalg.norm(run(OPTIMIZERS["RMSProp"], 1.0, SCHEDULE_STEPS, s, rates[name]), axis=1)
    for name, s in schedules.items()
}
for name, d in distance.items():
    closest = int(np.argmin(d))
    finding(
        f"RMSProp lr 1 with {name}: farthest from the minimum {d.max():.3g} (start {d[0]:.3g}), "
        f"closest {d[closest]:.3g} at step {closest}, then as far as {d[closest:].max():.3g}; "
        f"after {SCHEDULE_STEPS} steps {d[-1]:.3g}"
    )


def draw_paths(ax):
    paths = {}
    for name, (steps, lr) in best.items():
        if steps is not None:
            paths[f"{name}, lr {lr:.2g}: {steps} steps"] = run(OPTIMIZERS[name], lr, steps)
    plot_trajectories(
        surface,
        paths,
        ax,
        xlim=(-4.6, 1.6),
        ylim=(-2.2, 2.2),
        minimum=(0.0, 0.0),
        title=f"each optimizer at its best learning rate, until it stays within {EPS:g} of the minimum",
    )
    ax.legend(fontsize="small", loc="lower right")
    ax.title.set_fontsize("medium")


def draw_schedules(axes):
    for name, d in distance.items():
        axes[0].semilogy(np.maximum(d, 1e-300), label=name)
    axes[0].set(xlabel="step", ylabel="distance to the minimum (log scale)", ylim=(1e-12, 50))
    axes[0].set_title("RMSProp (lr 1) on the same surface")
    axes[0].legend(fontsize="small")
    for name, r in rates.items():
        axes[1].semilogy(r, label=name)
    axes[1].set(xlabel="step", ylabel="learning rate (log scale)", title="the schedules")
    axes[1].legend(fontsize="small")


stem = Path(__file__).stem
save_figure(stem, draw_paths, figsize=(9, 5.5))
save_figure(f"{stem}_schedules", draw_schedules, ncols=2, figsize=(12, 4.4))
