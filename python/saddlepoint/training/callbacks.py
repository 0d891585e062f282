"""Callbacks: early stopping and checkpoints during a fit."""

from __future__ import annotations

import math

from ..validation import Constraint, Flag, Integer, OneOf, Real, check_params


class _LogKey(Constraint):
    """The name of a logged value (``"loss"``, ``"val_accuracy"``, ...): a non-empty string."""

    description = "the name of a logged value, e.g. 'val_loss'"

    def accepts(self, value) -> bool:
        return isinstance(value, str) and bool(value)


_LOG_KEY = _LogKey()


class Callback:
    """Hooks called by :meth:`Trainer.fit`; override any. Set ``trainer.stop_training = True``
    to stop after the current epoch."""

    def on_train_begin(self, trainer) -> None: ...

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None: ...

    def on_train_end(self, trainer) -> None: ...


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs; with ``restore_best`` the model gets the weights of its best epoch back."""

    constraints = {
        "monitor": _LOG_KEY,
        "patience": Integer(0),
        "min_delta": Real(0),
        "mode": OneOf("min", "max"),
        "restore_best": Flag(numeric=True),
    }

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "min",
        restore_best: bool = True,
    ):
        checked = check_params(
            dict(
                monitor=monitor, patience=patience, min_delta=min_delta, mode=mode, restore_best=restore_best
            ),
            self.constraints,
        )
        self.monitor, self.patience, self.min_delta = (
            checked["monitor"],
            checked["patience"],
            checked["min_delta"],
        )
        self.mode, self.restore_best = checked["mode"], checked["restore_best"]

    def on_train_begin(self, trainer):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.wait, self.best_state, self.stopped_epoch = 0, 0, None, None

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r}, but the epoch logged only "
                f"{sorted(logs)}; pass validation data or monitor 'loss'"
            )
        value = logs[self.monitor]
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
        if self.restore_best and self.best_state is not None and self.stopped_epoch is not None:
            trainer.model.load_state_dict(self.best_state)


class ModelCheckpoint(Callback):
    """Writes a checkpoint (see :mod:`saddlepoint.checkpoint`) after every epoch, or only when
    ``monitor`` improves with ``save_best_only``."""

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
