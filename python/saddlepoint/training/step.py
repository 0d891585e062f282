"""The training step and prediction in eval mode.

:func:`train_step` is the one update every trainer in the package runs (:class:`Trainer`,
:func:`lr_find`); what a caller adds to it (finiteness checks that stop a batch before its
update, a rollback) comes in through a ``guard`` rather than a copy of the step.
"""

from __future__ import annotations

from typing import Protocol

from ..nn.scratch import reusing_buffers


class StepGuard(Protocol):
    """What :func:`train_step` calls between its phases; either method may raise to stop the
    step before ``optimizer.step()``, so that the weights and the optimizer state are untouched."""

    def after_forward(self, loss: float) -> None:
        """Called with the batch loss after the forward pass, before the gradients are zeroed."""

    def before_update(self) -> None:
        """Called after the backward pass, before ``optimizer.step()``."""


def train_step(model, loss_fn, optimizer, xb, yb, guard: StepGuard | None = None) -> float:
    """One update: forward, loss, backward, optimizer step. Returns the batch loss.

    ``guard`` (optional) is called after the forward pass and before the update (see
    :class:`StepGuard`); without it the step costs nothing more.

    The forward and backward passes run inside ``nn.scratch.reusing_buffers``: the layers and
    the loss reuse their output and gradient buffers from one step to the next (no array is
    allocated in steady state), and the step hands none of them out.

    Examples
    --------
    >>> model = sp.Dense(2, 1, rng=0)
    >>> optimizer = sp.SGD(model.parameters(), lr=0.1)
    >>> X, y = np.ones((4, 2), dtype=np.float32), np.zeros((4, 1), dtype=np.float32)
    >>> first = sp.training.train_step(model, sp.MSELoss(), optimizer, X, y)
    >>> second = sp.training.train_step(model, sp.MSELoss(), optimizer, X, y)
    >>> second < first
    True
    """
    with reusing_buffers():
        loss = loss_fn(model.forward(xb), yb)
        if guard is not None:
            guard.after_forward(loss)
        optimizer.zero_grad()
        model.backward(loss_fn.backward())
    if guard is not None:
        guard.before_update()
    optimizer.step()
    return loss
