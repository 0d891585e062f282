"""The learning-rate sweep: one fresh model trained per rate, in parallel through joblib."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._jobs import check_n_jobs, run_jobs
from ..nn.module import Module
from ..validation import Integer, Real, check_params
from .trainer import TrainingDiverged

#: The constraints of :func:`lr_sweep`'s scalar arguments.
LR_SWEEP_CONSTRAINTS = {"epochs": Integer(1), "validation_split": Real(0, 1, closed="neither")}


@dataclass
class LRSweepResult:
    """What :func:`lr_sweep` measured: one row per rate, in the order given, and the rate whose
    best validation loss is lowest (``best_lr``; None when every rate diverged).

    A row holds ``lr``, ``epochs_trained``, ``diverged`` (the loss stopped being finite: the row
    keeps what the epochs before it recorded), the last ``train_loss`` and ``val_loss``, the best
    ``best_val_loss`` with its ``best_epoch``, and the last value of each validation metric the
    trainer records (``val_accuracy``, ...)."""

    rows: list
    best_lr: float | None
    histories: list = field(repr=False, default_factory=list)

    def to_dict(self) -> dict:
        """The rows and ``best_lr``, with JSON's null for the values that are not finite."""
        rows = [{k: _finite_or_none(v) for k, v in row.items()} for row in self.rows]
        return {"rows": rows, "best_lr": self.best_lr}

    def __str__(self) -> str:
        metrics = sorted({k for r in self.rows for k in r if k.startswith("val_") and k != "val_loss"})
        head = f"{'lr':>10} {'epochs':>6} {'train loss':>11} {'val loss':>9} {'best val loss':>14}"
        head += "".join(f" {k:>14}" for k in metrics)
        lines = [f"learning-rate sweep, {len(self.rows)} rates; best lr {self.best_lr}", head]
        for r in self.rows:
            line = (
                f"{r['lr']:>10.3g} {r['epochs_trained']:>6} {r['train_loss']:>11.4g} {r['val_loss']:>9.4g} "
                f"{r['best_val_loss']:>14.4g}" + "".join(f" {r.get(k, math.nan):>14.4f}" for k in metrics)
            )
            lines.append(line + ("  diverged" if r["diverged"] else ""))
        return "\n".join(lines)

    def plot(self, ax=None):
        """Draws the best validation loss against the rate (log scale), the chosen rate marked;
        needs matplotlib."""
        import matplotlib.pyplot as plt

        ax = ax or plt.figure().gca()
        lrs = [r["lr"] for r in self.rows]
        ax.plot(lrs, [r["best_val_loss"] for r in self.rows], "o-", label="best validation loss")
        if self.best_lr is not None:
            ax.axvline(self.best_lr, color="tab:red", linestyle="--", label=f"best lr = {self.best_lr:.3g}")
        ax.set(xscale="log", xlabel="learning rate", ylabel="validation loss", title="Learning-rate sweep")
        ax.legend()
        return ax


def lr_sweep(
    make_trainer, X, y, *, lrs, epochs: int, validation_data=None, validation_split: float = 0.2, n_jobs=None
) -> LRSweepResult:
    """Trains a fresh ``make_trainer(lr)`` for ``epochs`` epochs per rate of ``lrs`` and scores
    each on the same validation data: the sweep that :func:`lr_find`'s single run approximates.

    Parameters
    ----------
    make_trainer : callable ``lr -> Trainer``, building a new model and an optimizer with that rate
    X, y : the training data, as :meth:`Trainer.fit` takes them
    lrs : the positive learning rates to try
    epochs : epochs per rate (fewer where the trainer's callbacks stop it early)
    validation_data : ``(X_val, y_val)``; by default each trainer holds out ``validation_split``
        of ``X`` (the same rows for every rate: the split is seeded by the trainer's seed)
    n_jobs : int or None, default None
        Rates trained at once, through ``joblib.Parallel`` (as in scikit-learn: None is one at a
        time unless a ``joblib.parallel_config`` context says otherwise, -1 one per core); on a
        Ray or Dask cluster under ``joblib.parallel_config(backend="ray" | "dask")``.
        ``make_trainer`` then runs in the workers, so it must be picklable by cloudpickle. The
        results are the serial run's exactly.

    Returns
    -------
    LRSweepResult
        A rate whose loss stops being finite is a row marked ``diverged``, not an error.

    Examples
    --------
    >>> import saddlepoint as sp
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> def make_trainer(lr):
    ...     model = sp.mlp([64, 32, 10], "relu", rng=0)
    ...     return sp.Trainer(model, sp.CrossEntropyLoss(), sp.Adam(model.parameters(), lr=lr),
    ...                       metrics=["accuracy"], seed=0, verbose=0)
    >>> sweep = sp.lr_sweep(make_trainer, X / 16, y, lrs=[1e-3, 1e-2], epochs=2)
    >>> sweep.best_lr in (1e-3, 1e-2)
    True
    """
    checked = check_params(dict(epochs=epochs, validation_split=validation_split), LR_SWEEP_CONSTRAINTS)
    if isinstance(make_trainer, Module) or not callable(make_trainer):
        raise TypeError(f"make_trainer must be a function lr -> Trainer, got {type(make_trainer).__name__}")
    try:
        rates = [float(lr) for lr in np.ravel(lrs)]
    except (TypeError, ValueError):
        raise TypeError(f"lrs must be a sequence of positive numbers, got {lrs!r}") from None
    if not rates or not all(math.isfinite(lr) and lr > 0 for lr in rates):
        raise ValueError(f"lrs must be a non-empty sequence of positive finite numbers, got {rates}")
    n_jobs = check_n_jobs(n_jobs)
    settings = (X, y, checked["epochs"], validation_data, checked["validation_split"])
    results = list(run_jobs(_train_rate, ((make_trainer, lr, *settings) for lr in rates), n_jobs))
    rows = [row for row, _ in results]
    finite = [r for r in rows if math.isfinite(r["best_val_loss"])]
    best = min(finite, key=lambda r: r["best_val_loss"])["lr"] if finite else None
    return LRSweepResult(rows, best, [history for _, history in results])


def _train_rate(make_trainer, lr: float, X, y, epochs: int, validation_data, validation_split: float):
    """One rate of :func:`lr_sweep`: its row and the trainer's history."""
    trainer = make_trainer(lr)
    diverged = False
    try:
        trainer.fit(X, y, epochs, validation_data=validation_data, validation_split=validation_split)
    except TrainingDiverged:
        diverged = True
    history = trainer.history
    if "val_loss" not in history:
        return _diverged_row(lr), history
    val_losses = history["val_loss"]
    best_epoch = int(np.nanargmin(val_losses)) if np.isfinite(val_losses).any() else 0
    row = {
        "lr": lr,
        "epochs_trained": len(val_losses),
        "diverged": diverged,
        "train_loss": history["loss"][-1],
        "val_loss": val_losses[-1],
        "best_val_loss": val_losses[best_epoch] if np.isfinite(val_losses[best_epoch]) else math.inf,
        "best_epoch": best_epoch + 1,
    }
    row.update({k: v[-1] for k, v in history.values.items() if k.startswith("val_") and k != "val_loss"})
    return row, history


def _finite_or_none(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _diverged_row(lr: float) -> dict:
    """The row of a rate that diverged in its first epoch, before any validation."""
    return {
        "lr": lr,
        "epochs_trained": 0,
        "diverged": True,
        "train_loss": math.nan,
        "val_loss": math.nan,
        "best_val_loss": math.inf,
        "best_epoch": 0,
    }
