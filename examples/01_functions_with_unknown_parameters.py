"""Lecture: "functions with unknown parameters" (Hung-yi Lee, ML 2021, lecture 1).

A piecewise-linear curve is a constant plus a sum of hard sigmoids; a sigmoid only approximates a
hard sigmoid, and two ReLUs make one. This example fits

1. a piecewise-linear target with one hidden layer of 8 hard sigmoids, 8 sigmoids or 8 ReLUs:
   the piecewise-linear units can fit it exactly, the smooth sigmoids cannot;
2. a sawtooth with 8 teeth (16 linear pieces) with a wide network (1 hidden layer of 32 ReLUs)
   and a deep one (2 hidden layers of 8 ReLUs), both 97 parameters: depth composes pieces, so the
   deep one fits the many pieces better ("deep is better than fat").

Each network is trained from a few seeded starts with Adam on the mean squared error; the
findings give the best and the median final MSE over the starts, the figure the median start's fit.

    python examples/01_functions_with_unknown_parameters.py [--quick]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import finding, quick, save_figure

from saddlepoint import Adam, Dense, HardSigmoid, MSELoss, ReLU, Sequential, Sigmoid, Trainer

EPOCHS = 600 if quick() else 1500
STARTS = 4 if quick() else 5
LEARNING_RATE = 0.01
BATCH_SIZE = 32


def piecewise_linear(x, knots_x, knots_y) -> np.ndarray:
    return np.interp(x[:, 0], knots_x, knots_y).astype(np.float32)[:, None]


def network(sizes, activation, seed: int) -> Sequential:
    """Dense layers of ``sizes`` with ``activation`` after each hidden one."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(n_in, n_out, rng=1000 * seed + i))
        if i < len(sizes) - 2:
            layers.append(activation())
    return Sequential(*layers)


def fit(sizes, activation, X, y):
    """Trains one network per start; returns the final MSEs and each start's predictions."""
    losses, predictions = [], []
    for seed in range(STARTS):
        model = network(sizes, activation, seed)
        trainer = Trainer(
            model,
            MSELoss(),
            Adam(model.parameters(), lr=LEARNING_RATE),
            batch_size=BATCH_SIZE,
            seed=seed,
            verbose=0,
        )
        trainer.fit(X, y, EPOCHS)
        losses.append(trainer.evaluate(X, y)["loss"])
        predictions.append(trainer.predict(X)[:, 0])
    return np.array(losses), predictions


def median_start(losses) -> int:
    return int(np.argsort(losses)[len(losses) // 2])


# 1. The same number of units of three kinds on a curve of 5 linear pieces.
X1 = np.linspace(-3, 3, 256, dtype=np.float32)[:, None]
y1 = piecewise_linear(X1, [-3, -2, -1, 0.5, 1.5, 3], [1.0, 1.0, 2.5, 0.5, 1.5, 1.5])
units = {"hard sigmoid": HardSigmoid, "sigmoid": Sigmoid, "ReLU": ReLU}
unit_fits = {name: fit([1, 8, 1], activation, X1, y1) for name, activation in units.items()}
for name, (losses, _) in unit_fits.items():
    finding(
        f"8 {name} units: best MSE {losses.min():.3g}, median MSE {np.median(losses):.3g} "
        f"over {STARTS} starts, {EPOCHS} epochs"
    )

# 2. Deeper vs wider at 97 parameters each, on a sawtooth of 16 linear pieces.
X2 = np.linspace(-3, 3, 512, dtype=np.float32)[:, None]
y2 = piecewise_linear(X2, np.linspace(-3, 3, 17), [0.0, 1.0] * 8 + [0.0])
shapes = {"wide 1-32-1": [1, 32, 1], "deep 1-8-8-1": [1, 8, 8, 1]}
shape_fits = {name: fit(sizes, ReLU, X2, y2) for name, sizes in shapes.items()}
for name, sizes in shapes.items():
    losses = shape_fits[name][0]
    parameters = sum(p.data.size for p in network(sizes, ReLU, 0).parameters())
    finding(
        f"{name} ReLU ({parameters} parameters) on the sawtooth: median MSE {np.median(losses):.3g}, "
        f"best {losses.min():.3g}"
    )
wide, deep = (np.median(shape_fits[name][0]) for name in shapes)
finding(
    f"at equal parameter count the deep network's median MSE is {wide / deep:.2f}x lower than the wide one's"
)


def draw(axes):
    for ax, X, y, fits, title in (
        (axes[0], X1, y1, unit_fits, "8 units of each kind, one hidden layer"),
        (axes[1], X2, y2, shape_fits, "deeper vs wider, 97 parameters each (ReLU)"),
    ):
        ax.plot(X[:, 0], y[:, 0], color="black", linewidth=3, alpha=0.35, label="target")
        for name, (losses, predictions) in fits.items():
            pick = median_start(losses)
            ax.plot(X[:, 0], predictions[pick], linewidth=1.3, label=f"{name} (MSE {losses[pick]:.2g})")
        ax.set(xlabel="x (input)", ylabel="y (output)", title=title)
        ax.legend(fontsize="small")


save_figure(Path(__file__).stem, draw, ncols=2, figsize=(12, 4.4))
