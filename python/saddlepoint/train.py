"""The training step and the loops over epochs built from it."""

from __future__ import annotations

import numpy as np

from .data import minibatches


def train_step(model, loss_fn, optimizer, xb, yb) -> float:
    """One update: forward, loss, backward, optimizer step. Returns the batch loss."""
    loss = loss_fn(model.forward(xb), yb)
    optimizer.zero_grad()
    model.backward(loss_fn.backward())
    optimizer.step()
    return loss


def train_epoch(model, loss_fn, optimizer, X, y, batch_size: int, rng=None,
                shuffle: bool = True) -> float:
    """One pass over ``(X, y)`` in shuffled mini-batches; returns the mean batch loss."""
    model.train()
    losses = [
        train_step(model, loss_fn, optimizer, X[idx], y[idx])
        for idx in minibatches(len(X), batch_size, rng, shuffle)
    ]
    return float(np.mean(losses))


def predict(model, X, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs on ``X`` in eval mode (the model's mode is restored afterwards)."""
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        outputs = [model.forward(X[idx]) for idx in minibatches(len(X), batch_size, shuffle=False)]
    finally:
        model.train(was_training)
    return np.concatenate(outputs)


def accuracy(model, X, y) -> float:
    """Fraction of rows whose highest-scoring class equals the label."""
    return float(np.mean(predict(model, X).argmax(axis=1) == np.asarray(y)))
