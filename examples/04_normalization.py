"""Lecture: batch normalization (Hung-yi Lee, ML 2021, "changing the landscape: batch
normalization").

1. Feature normalization. A linear model ``y = w1·x1 + w2·x2`` on two features of very different
   scales has an elongated error surface: the loss changes 100 times faster along w2 than along
   w1, so gradient descent needs a small learning rate and many steps. Normalizing each feature,
   ``x̃ = (x − mean) / std``, makes the contours round and gradient descent converges in a few
   steps. (The surfaces are the exact quadratics of the two weights; the descent is the library's
   SGD on a Dense layer.)
2. Batch normalization. A 4-layer network on the digits, trained with the same SGD with and
   without ``BatchNorm1d`` after each hidden layer: epochs until the training loss is below a
   target. With sigmoids, the plain network barely moves; with ReLUs it learns, but more slowly.

    python examples/04_normalization.py [--quick]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import finding, quick, save_figure
from sklearn.datasets import load_digits

from saddlepoint import (
    SGD,
    BatchNorm1d,
    Callback,
    CrossEntropyLoss,
    Dense,
    MSELoss,
    ReLU,
    Sequential,
    Sigmoid,
    Trainer,
)
from saddlepoint.plot import plot_learning_curves, plot_trajectories

EPOCHS = 20 if quick() else 40
STARTS = 3
TARGET_LOSS = 0.1
TOLERANCE = 1e-3  # of the minimum loss, relative, for the linear model

# 1. Two features of scales 1 and 10; the target depends on both.
rng = np.random.default_rng(0)
raw = rng.standard_normal((500, 2)) * [1.0, 10.0]  # scales 1 and 10
y_lin = (raw @ [1.5, 0.2] + 0.3 * rng.standard_normal(500)).astype(np.float32)[:, None]
features = {
    "raw features (scales 1, 10)": raw.astype(np.float32),
    "normalized features": ((raw - raw.mean(axis=0)) / raw.std(axis=0)).astype(np.float32),
}


class RecordWeights(Callback):
    def __init__(self, layer):
        self.layer, self.path = layer, [layer.weight.data.ravel().copy()]

    def on_epoch_end(self, trainer, epoch, logs):
        self.path.append(self.layer.weight.data.ravel().copy())


linear = {}
for name, X in features.items():
    X64, y64 = X.astype(np.float64), y_lin[:, 0].astype(np.float64)
    hessian = 2 * X64.T @ X64 / len(X64)  # of the mean squared error
    minimum = np.linalg.solve(X64.T @ X64, X64.T @ y64)
    lowest = np.mean((X64 @ minimum - y64) ** 2)
    lr = 1.0 / np.linalg.eigvalsh(hessian).max()  # half the largest stable rate 2/λmax
    layer = Dense(2, 1, bias=False, rng=0)
    layer.weight.data[...] = [[-3.0, -1.0]] if name.startswith("raw") else [[-3.0, -3.0]]
    recorder = RecordWeights(layer)
    trainer = Trainer(
        Sequential(layer),
        MSELoss(),
        SGD(layer.parameters(), lr=lr),
        batch_size=len(X),
        callbacks=[recorder],
        shuffle=False,
        verbose=0,
    )
    losses = np.array(trainer.fit(X, y_lin, 1000 if quick() else 3000)["loss"])
    # The loss of epoch k is the full batch's before the k-th update: after k - 1 updates.
    close = np.flatnonzero(losses <= lowest * (1 + TOLERANCE))
    steps = int(close[0]) if len(close) else None
    eigenvalues = np.linalg.eigvalsh(hessian)
    linear[name] = (X64, y64, minimum, np.array(recorder.path[: (steps or len(losses)) + 1]), lr, steps)
    finding(
        f"{name}: Hessian condition number {eigenvalues.max() / eigenvalues.min():.3g}; gradient descent "
        f"(lr {lr:.3g} = 1/λmax) comes within {TOLERANCE:g} of the lowest loss in {steps} step{'s' * (steps != 1)}"
    )


# 2. Batch normalization on the digits (pixel values 0-16, normalized as in part 1).
digits, labels = load_digits(return_X_y=True)
digits = ((digits - digits.mean(axis=0)) / (digits.std(axis=0) + 1e-8)).astype(np.float32)


def network(activation, batch_norm: bool, seed: int) -> Sequential:
    sizes, layers = [64, 64, 64, 64, 10], []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(n_in, n_out, rng=100 * seed + i))
        if i < len(sizes) - 2:
            layers += [BatchNorm1d(n_out), activation()] if batch_norm else [activation()]
    return Sequential(*layers)


curves = {}
for activation in (ReLU, Sigmoid):
    for batch_norm in (False, True):
        name = f"{activation.__name__}{' + BatchNorm1d' if batch_norm else ''}"
        reached, histories = [], []
        for seed in range(STARTS):
            model = network(activation, batch_norm, seed)
            trainer = Trainer(
                model,
                CrossEntropyLoss(),
                SGD(model.parameters(), lr=0.1),
                batch_size=64,
                seed=seed,
                verbose=0,
            )
            histories.append(trainer.fit(digits, labels, EPOCHS))
            below = np.flatnonzero(np.array(histories[-1]["loss"]) < TARGET_LOSS)
            reached.append(int(below[0]) + 1 if len(below) else None)
        curves[name] = histories[0]
        epochs = "never" if None in reached else f"median {int(np.median(reached))}"
        finding(
            f"{name}: epochs to a training loss below {TARGET_LOSS:g}: {epochs} over {STARTS} starts "
            f"({reached}), loss after {EPOCHS} epochs {histories[0]['loss'][-1]:.3g}"
        )


def draw_surfaces(axes):
    for ax, (name, (X, y, minimum, path, lr, steps)) in zip(axes, linear.items()):

        def surface(w1, w2, X=X, y=y):
            residual = X[:, 0, None, None] * w1 + X[:, 1, None, None] * w2 - y[:, None, None]
            return np.mean(residual**2, axis=0)

        plot_trajectories(
            surface,
            {f"gradient descent, lr {lr:.2g}: {steps} step{'s' * (steps != 1)}": path},
            ax,
            xlim=(minimum[0] - 5, minimum[0] + 5),
            ylim=(minimum[1] - 5, minimum[1] + 5),
            minimum=minimum,
            title=f"MSE of y = w1·x1 + w2·x2 on {name}",
            resolution=120,
            levels=15,
        )
        ax.set_aspect("equal")
        ax.title.set_fontsize("medium")


def draw_training(ax):
    for name, history in curves.items():
        plot_learning_curves(
            history, ax, label=name, log=True, title="4-layer network on the digits, SGD lr 0.1"
        )
    ax.axhline(TARGET_LOSS, color="gray", linewidth=0.8, linestyle=":", label=f"target {TARGET_LOSS:g}")
    ax.legend(fontsize="small")
    ax.set_ylabel("training cross-entropy (log scale)")


stem = Path(__file__).stem
save_figure(stem, draw_surfaces, ncols=2, figsize=(11, 4.8))
save_figure(f"{stem}_batchnorm", draw_training, figsize=(7, 4.6))
