"""The training step and prediction in eval mode."""

from __future__ import annotations

import numpy as np

from ..data.batches import minibatches


def train_step(model, loss_fn, optimizer, xb, yb) -> float:
    """One update: forward, loss, backward, optimizer step. Returns the batch loss."""
    loss = loss_fn(model.forward(xb), yb)
    optimizer.zero_grad()
    model.backward(loss_fn.backward())
    optimizer.step()
    return loss


def predict(model, X, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs on ``X`` in eval mode (the model's mode is restored afterwards)."""
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        outputs = [model.forward(X[idx]) for idx in minibatches(len(X), batch_size, shuffle=False)]
    finally:
        model.train(was_training)
    return np.concatenate(outputs)
