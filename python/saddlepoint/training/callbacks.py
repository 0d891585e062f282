"""Callbacks: early stopping and checkpoints during a fit."""

from __future__ import annotations

import math


class Callback:
    """Hooks called by :meth:`Trainer.fit`; override any. Set ``trainer.stop_training = True``
    to stop after the current epoch."""

    def on_train_begin(self, trainer) -> None: ...

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None: ...

    def on_train_end(self, trainer) -> None: ...


class EarlyStopping(Callback):
    """Stops when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs; with ``restore_best`` the model gets the weights of its best epoch back."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "min", restore_best: bool = True):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.mode, self.restore_best = mode, restore_best

    def on_train_begin(self, trainer):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.wait, self.best_state, self.stopped_epoch = 0, 0, None, None

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, but the epoch logged only "
                           f"{sorted(logs)}; pass validation data or monitor 'loss'")
        value = logs[self.monitor]
        improved = (value < self.best - self.min_delta if self.mode == "min"
                    else value > self.best + self.min_delta)
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

    def __init__(self, path, monitor: str = "val_loss", mode: str = "min", save_best_only: bool = False):
        self.path, self.monitor, self.mode, self.save_best_only = path, monitor, mode, save_best_only
        self.best = math.inf if mode == "min" else -math.inf

    def on_epoch_end(self, trainer, epoch, logs):
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None or not (value < self.best if self.mode == "min" else value > self.best):
                return
            self.best = value
        trainer.save_checkpoint(self.path)
