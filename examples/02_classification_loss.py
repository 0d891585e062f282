"""Lecture: classification and its loss (Hung-yi Lee, ML 2021, "classification: softmax and
cross-entropy").

Softmax followed by the mean squared error to the one-hot target has a flat plateau where the
softmax saturates on a wrong class: its gradient vanishes there and gradient descent stalls.
Cross-entropy on the same logits keeps a slope (its gradient is ``p − one_hot``), so training
escapes. This example starts a linear classifier of three classes confidently wrong, draws both
error surfaces over two of its weights around that start, and trains each loss from it with the
same full-batch gradient descent for N steps.

The library's ``CrossEntropyLoss`` takes logits; for the MSE variant the example adds a softmax
layer written in NumPy (a layer with ``forward``/``backward`` mixes with the Rust ones).

    python examples/02_classification_loss.py [--quick]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import finding, quick, save_figure

from saddlepoint import (
    SGD,
    Callback,
    CrossEntropyLoss,
    Dense,
    Module,
    MSELoss,
    Sequential,
    Trainer,
    diagnose,
    one_hot,
    softmax,
)
from saddlepoint.plot import plot_landscape_2d

STEPS = 100 if quick() else 300
LEARNING_RATE = 1.0
GRID = 15 if quick() else 31  # points along each side of the error-surface grid
WRONGNESS = 2.0  # the start's weights: this many times the class centres, negated


class Softmax(Module):
    """Softmax over the last axis, so that MSELoss compares probabilities to one-hot targets."""

    def forward(self, x):
        self._p = softmax(x)
        return self._p

    def backward(self, grad_output):
        p = self._p  # the softmax's Jacobian-vector product
        return p * (grad_output - np.sum(grad_output * p, axis=1, keepdims=True))


class AccuracyPerStep(Callback):
    def __init__(self, X, labels):
        self.X, self.labels, self.accuracy = X, labels, []

    def on_epoch_end(self, trainer, epoch, logs):
        self.accuracy.append(float(np.mean(np.argmax(trainer.predict(self.X), axis=1) == self.labels)))


rng = np.random.default_rng(0)
CENTRES = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
labels = np.repeat(np.arange(3), 50)
X = (CENTRES[labels] + 0.6 * rng.standard_normal((len(labels), 2))).astype(np.float32)


def poor_start() -> Dense:
    """Each class's weights point away from its centre: every sample is confidently misclassified."""
    layer = Dense(2, 3, rng=0)
    layer.weight.data[...] = -WRONGNESS * CENTRES
    layer.bias.data[...] = 0.0
    return layer


setups = {
    "cross-entropy": (lambda: Sequential(poor_start()), CrossEntropyLoss(), labels),
    "MSE on softmax": (
        lambda: Sequential(poor_start(), Softmax()),
        MSELoss(),
        one_hot(labels, 3).astype(np.float32),
    ),
}
start = np.concatenate([poor_start().weight.data.ravel(), np.zeros(3)])
# The surface over weight[0, 0] and weight[0, 1] (class 0's weights) around the start.
directions = np.eye(len(start))[[0, 1]]
results = {}
for name, (make_model, loss, targets) in setups.items():
    model = make_model()
    surface = diagnose.loss_landscape_2d(
        model, loss, X, targets, center=start, directions=directions, span=6.0, steps=GRID, progress=False
    )
    gradient = diagnose.gradient_norm(model, loss, X, targets)
    tracker = AccuracyPerStep(X, labels)
    trainer = Trainer(
        model,
        loss,
        SGD(model.parameters(), lr=LEARNING_RATE),
        batch_size=len(X),
        callbacks=[tracker],
        verbose=0,
        seed=0,
    )
    history = trainer.fit(X, targets, STEPS)
    results[name] = (surface, tracker.accuracy, history["loss"])
    finding(
        f"{name}: gradient norm {gradient:.3g} at the start; loss {history['loss'][0]:.3g} -> {history['loss'][-1]:.3g} "
        f"({history['loss'][-1] / history['loss'][0]:.3g} of the start) and accuracy {tracker.accuracy[-1]:.2f} "
        f"after {STEPS} steps of gradient descent (lr {LEARNING_RATE:g})"
    )
ce, mse = (results[name][1][-1] for name in setups)
finding(f"cross-entropy escapes the plateau (accuracy {ce:.2f}) where MSE stalls (accuracy {mse:.2f})")


def draw(axes):
    for ax, (name, (surface, _, _)) in zip(axes, results.items()):
        plot_landscape_2d(surface, ax, levels=12, title=f"{name}: error surface around the poor start (★)")
        ax.set(xlabel="change in weight[0, 0]", ylabel="change in weight[0, 1]")
        ax.title.set_fontsize("medium")
    for name, (_, accuracy, _) in results.items():
        axes[2].plot(range(1, len(accuracy) + 1), accuracy, label=name)
    axes[2].set(xlabel="gradient-descent step", ylabel="training accuracy", ylim=(-0.05, 1.05))
    axes[2].set_title("how far each gets from the same start", fontsize="medium")
    axes[2].legend(fontsize="small")


save_figure(Path(__file__).stem, draw, ncols=3, figsize=(14, 4.2))
