"""Callbacks: early stopping and checkpoints during a fit."""

from __future__ import annotations

import math
import sys

from ..validation import Constraint, Flag, Integer, OneOf, Real, check_params


class _LogKey(Constraint):
    """The name of a logged value (``"loss"``, ``"val_accuracy"``, ...): a non-empty string."""

    description = "the name of a logged value, e.g. 'val_loss'"

    def accepts(self, value) -> bool:
        return isinstance(value, str) and bool(value)


_LOG_KEY = _LogKey()


class Callback:
    """Hooks called by :meth:`Trainer.fit`; override any. Set ``trainer.stop_training = True``
    to stop after the current epoch.

    Examples
    --------
    >>> class PrintLoss(sp.Callback):
    ...     def on_epoch_end(self, trainer, epoch, logs):
    ...         print(epoch, round(logs["loss"], 2) >= 0)
    >>> model = sp.Dense(1, 1, rng=0)
    >>> trainer = sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters(), lr=0.1),
    ...                      callbacks=[PrintLoss()], verbose=0)
    >>> _ = trainer.fit(np.ones((4, 1)), np.ones((4, 1)), epochs=2)
    1 True
    2 True
    """

    def on_train_begin(self, trainer) -> None: ...

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None: ...

    def on_train_end(self, trainer) -> None: ...


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved by more than ``min_delta`` for more than
    ``patience`` epochs. With ``restore_best`` the model gets the weights of its best epoch back
    at the end of the fit: when it stopped early, and when the fit ran out of epochs after its
    best one. :meth:`summary` says what happened in a sentence; ``verbose`` prints it to stderr
    at the end of the fit.

    After a fit: ``best_epoch`` (the epoch of the best value, 0 before any), ``stopped_epoch``
    (the epoch it stopped at, None when it did not fire) and ``restored_epoch`` (the epoch
    whose weights the model got back, None when it kept its last ones).

    Parameters
    ----------
    monitor : str
        The value of the epoch's logs to watch (``"val_loss"``, ``"loss"``, ``"val_accuracy"``...).
    patience : int
        Epochs without improvement before stopping.
    min_delta : float
        The least change that counts as an improvement.
    mode : {"min", "max"}
        Whether smaller or larger values are better.
    restore_best : bool
        Give the model its best epoch's weights back at the end of the fit.
    verbose : bool
        Print :meth:`summary` to stderr at the end of the fit.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3)).astype(np.float32)
    >>> y = X @ np.array([1.0, -2.0, 0.5], dtype=np.float32)
    >>> model = sp.Dense(3, 1, rng=0)
    >>> stop = sp.EarlyStopping(monitor="loss", patience=2, min_delta=1e-3)
    >>> trainer = sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters(), lr=0.1),
    ...                      callbacks=[stop], seed=0, verbose=0)
    >>> history = trainer.fit(X, y[:, None], epochs=200)
    >>> stop.stopped_epoch is not None and stop.stopped_epoch < 200
    True
    """

    constraints = {
        "monitor": _LOG_KEY,
        "patience": Integer(0),
        "min_delta": Real(0),
        "mode": OneOf("min", "max"),
        "restore_best": Flag(numeric=True),
        "verbose": Flag(numeric=True),
    }

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "min",
        restore_best: bool = True,
        verbose: bool = False,
    ):
        checked = check_params(
            dict(
                monitor=monitor,
                patience=patience,
                min_delta=min_delta,
                mode=mode,
                restore_best=restore_best,
                verbose=verbose,
            ),
            self.constraints,
        )
        self.monitor, self.patience, self.min_delta = (
            checked["monitor"],
            checked["patience"],
            checked["min_delta"],
        )
        self.mode, self.restore_best = checked["mode"], checked["restore_best"]
        self.verbose = checked["verbose"]
        self.best_epoch, self.last_epoch = 0, 0
        self.stopped_epoch: int | None = None
        self.restored_epoch: int | None = None

    def on_train_begin(self, trainer):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.last_epoch, self.wait, self.best_state = 0, 0, 0, None
        self.stopped_epoch = self.restored_epoch = None

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r}, but the epoch logged only "
                f"{sorted(logs)}; pass validation data or monitor 'loss'"
            )
        value = logs[self.monitor]
        self.last_epoch = epoch
        improved = (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
        if improved:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_state = trainer.model.state_dict()
        else:
            self.wait += 1
            if self.wait > self.patience:
                trainer.stop_training = True
                self.stopped_epoch = epoch

    def on_train_end(self, trainer):
        if self.restore_best and self.best_state is not None and self.best_epoch != self.last_epoch:
            trainer.model.load_state_dict(self.best_state)
            self.restored_epoch = self.best_epoch
        if self.verbose and self.last_epoch:
            print(self.summary(), file=sys.stderr)

    def summary(self, name: str | None = None) -> str:
        """What happened, in one sentence: "early stopping at epoch 57: val_loss was best at
        epoch 46 (0.0812) and did not improve in the 11 epochs after it; restored the weights
        of epoch 46". ``name`` is what the sentence calls the monitored value (default: its
        key)."""
        name = name or self.monitor
        if not self.last_epoch:
            return "early stopping: no epoch trained yet"
        if not self.best_epoch:
            best = f"{name} never improved"
        else:
            best = f"{name} was best at epoch {self.best_epoch} ({self.best:.4g})"
        if self.stopped_epoch is not None:
            head = (
                f"early stopping at epoch {self.stopped_epoch}: {best} and did not improve in the "
                f"{self.stopped_epoch - self.best_epoch} epochs after it"
            )
        elif self.best_epoch == self.last_epoch:
            return (
                f"early stopping did not fire: {name} was still improving at the last epoch, "
                f"{self.last_epoch} ({self.best:.4g}); more epochs may help"
            )
        else:
            head = f"early stopping did not fire within {self.last_epoch} epochs: {best}"
        if self.restored_epoch is not None:
            return f"{head}; restored the weights of epoch {self.restored_epoch}"
        return f"{head}; kept the weights of epoch {self.last_epoch}"


class ModelCheckpoint(Callback):
    """Writes a checkpoint (see :mod:`saddlepoint.checkpoint`) after every epoch, or only when
    ``monitor`` improves with ``save_best_only``.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file, rewritten atomically each time.
    monitor : str
        The logged value that decides what is best (``"val_loss"``, ``"loss"``, ...).
    mode : {"min", "max"}
    save_best_only : bool

    Examples
    --------
    >>> model = sp.Dense(2, 1, rng=0)
    >>> checkpoint = sp.ModelCheckpoint("best.ckpt", monitor="loss", save_best_only=True)
    >>> trainer = sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters(), lr=0.1),
    ...                      callbacks=[checkpoint], verbose=0)
    >>> _ = trainer.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=3)
    >>> fresh = sp.Trainer(model, sp.MSELoss(), sp.SGD(model.parameters(), lr=0.1), verbose=0)
    >>> fresh.load_checkpoint("best.ckpt")
    >>> fresh.epoch
    3
    """

    constraints = {"monitor": _LOG_KEY, "mode": OneOf("min", "max"), "save_best_only": Flag(numeric=True)}

    def __init__(self, path, monitor: str = "val_loss", mode: str = "min", save_best_only: bool = False):
        checked = check_params(
            dict(monitor=monitor, mode=mode, save_best_only=save_best_only), self.constraints
        )
        self.path, self.monitor, self.mode = path, checked["monitor"], checked["mode"]
        self.save_best_only = checked["save_best_only"]
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, trainer, epoch, logs):
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None or not (value < self.best if self.mode == "min" else value > self.best):
                return
            self.best = value
        trainer.save_checkpoint(self.path)
