"""The learning-rate range test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..data.batches import minibatches
from ..validation import Integer, Real, check_params
from .step import train_step

#: The constraints of :func:`lr_find`'s arguments (besides ``start_lr < end_lr``).
LR_FIND_CONSTRAINTS = {
    "start_lr": Real(0, closed="neither"),
    "end_lr": Real(0, closed="neither"),
    "num_steps": Integer(10),
    "batch_size": Integer(1),
    "smoothing": Real(0, 1, closed="right"),
    "diverge_factor": Real(1, closed="neither"),
}


@dataclass
class LRFinderResult:
    """What :func:`lr_find` measured: the rates tried, the smoothed and raw losses, and the
    suggested rate."""

    lrs: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    lr_at_min_loss: float
    stopped_early: bool

    def plot(self, ax=None):
        """Draws the smoothed loss against the rate (log scale) with the suggestion marked;
        needs matplotlib."""
        import matplotlib.pyplot as plt

        ax = ax or plt.figure().gca()
        ax.plot(self.lrs, self.losses, label="smoothed loss")
        ax.axvline(
            self.suggestion, color="tab:red", linestyle="--", label=f"suggested lr = {self.suggestion:.3g}"
        )
        ax.set(xscale="log", xlabel="learning rate", ylabel="training loss")
        ax.legend()
        return ax

    def __str__(self) -> str:
        return (
            f"lr_find: tried {len(self.lrs)} rates from {self.lrs[0]:.3g} to {self.lrs[-1]:.3g}"
            f"{' (stopped when the loss diverged)' if self.stopped_early else ''}; "
            f"suggested lr {self.suggestion:.3g} (steepest descent of the loss), "
            f"loss lowest at {self.lr_at_min_loss:.3g}"
        )


def lr_find(
    model,
    loss_fn,
    optimizer,
    X,
    y,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 200,
    batch_size: int = 32,
    smoothing: float = 0.05,
    diverge_factor: float = 4.0,
    rng=None,
) -> LRFinderResult:
    """The learning-rate range test (Smith, "Cyclical Learning Rates", 2017).

    Trains for up to ``num_steps`` mini-batches while the rate grows exponentially from
    ``start_lr`` to ``end_lr``, recording the loss of each batch; stops early once the
    smoothed loss exceeds ``diverge_factor`` times its minimum or stops being finite. The model
    and the optimizer are restored afterwards, so the test leaves no trace.

    The loss is smoothed by an exponential moving average (weight ``smoothing`` on each new
    batch, bias-corrected). The suggestion is the rate where the smoothed loss falls fastest
    against ``log(lr)``, looked for before the loss's minimum and after the first tenth of the
    curve (where the average is still settling): a rate at which training makes quick progress
    and is still stable. ``lr_at_min_loss`` is usually already too large to train with; a tenth
    of it is the other common rule of thumb.

    Parameters
    ----------
    model : Module
    loss_fn : Loss
    optimizer : Optimizer
        Its learning rate is overwritten during the test and restored afterwards.
    X : array_like, (n_samples, ...)
    y : array_like, (n_samples,) or (n_samples, n_outputs)
        Labels for a classification loss, targets otherwise.
    start_lr, end_lr : float
        The first and the largest rate tried, ``0 < start_lr < end_lr``.
    num_steps : int
        The most mini-batches.
    batch_size : int
    smoothing : float in (0, 1]
        The weight of each new batch in the moving average of the loss.
    diverge_factor : float > 1
        Stop once the smoothed loss exceeds this times its minimum.
    rng : numpy.random.Generator, int or None
        Draws the batches.

    Returns
    -------
    LRFinderResult
        The rates, the smoothed and raw losses, ``suggestion`` and ``lr_at_min_loss``.

    Raises
    ------
    ValueError
        A setting out of range, or data that does not fit the model.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(256, 4)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> model = sp.mlp([4, 16, 2], rng=0)
    >>> optimizer = sp.SGD(model.parameters(), lr=0.1)
    >>> result = sp.lr_find(model, sp.CrossEntropyLoss(), optimizer, X, y, num_steps=100, rng=0)
    >>> 1e-7 <= result.suggestion <= 10.0, len(result.lrs) <= 100
    (True, True)
    >>> optimizer.param_groups[0]["lr"]  # restored
    0.1
    """
    checked = check_params(
        dict(
            start_lr=start_lr,
            end_lr=end_lr,
            num_steps=num_steps,
            batch_size=batch_size,
            smoothing=smoothing,
            diverge_factor=diverge_factor,
        ),
        LR_FIND_CONSTRAINTS,
    )
    start_lr, end_lr, num_steps = checked["start_lr"], checked["end_lr"], checked["num_steps"]
    batch_size, smoothing, diverge_factor = (
        checked["batch_size"],
        checked["smoothing"],
        checked["diverge_factor"],
    )
    if not start_lr < end_lr:
        raise ValueError(
            f"start_lr and end_lr must satisfy 0 < start_lr < end_lr, got {start_lr} and {end_lr}"
        )
    rng = np.random.default_rng(rng)
    model_state, optimizer_state = model.state_dict(), optimizer.state_dict()
    growth = (end_lr / start_lr) ** (1.0 / (num_steps - 1))
    lrs: list[float] = []
    smoothed: list[float] = []
    raw: list[float] = []
    average, best, stopped_early = 0.0, np.inf, False
    model.train()
    try:
        batches: Iterator[np.ndarray] = iter(())  # empty: the first step draws an epoch's batches
        for step in range(num_steps):
            idx = next(batches, None)
            if idx is None:
                batches = minibatches(len(X), batch_size, rng)
                idx = next(batches)
            lr = start_lr * growth**step
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = train_step(model, loss_fn, optimizer, X[idx], y[idx])
            if not np.isfinite(loss):
                stopped_early = True
                break
            average = (1 - smoothing) * average + smoothing * loss
            value = average / (1 - (1 - smoothing) ** (step + 1))
            lrs.append(lr)
            smoothed.append(value)
            raw.append(loss)
            best = min(best, value)
            if value > diverge_factor * best:
                stopped_early = True
                break
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
    if len(lrs) < 10:
        raise RuntimeError(
            f"the loss diverged after {len(lrs)} steps, at lr={start_lr * growth ** len(lrs):.3g}; "
            f"lower start_lr"
        )
    lrs_arr, smoothed_arr = np.array(lrs), np.array(smoothed)
    lowest = int(np.argmin(smoothed_arr))
    first = len(lrs) // 10
    slopes = np.gradient(smoothed_arr, np.log(lrs_arr))
    window = slopes[first : max(lowest, first + 1)]
    steepest = first + int(np.argmin(window))
    return LRFinderResult(
        lrs_arr, smoothed_arr, np.array(raw), float(lrs_arr[steepest]), float(lrs_arr[lowest]), stopped_early
    )
