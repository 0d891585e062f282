"""Training: one step, the Trainer with its callbacks, history and metrics, the learning-rate
range test and the learning-rate sweep."""

from ..nn.module import predict
from .callbacks import Callback, EarlyStopping, ModelCheckpoint
from .history import History
from .lr_find import LRFinderResult, lr_find
from .lr_sweep import LRSweepResult, lr_sweep
from .metrics import METRICS, metric_value
from .step import train_step
from .trainer import Trainer, TrainingDiverged

__all__ = [
    "METRICS",
    "Callback",
    "EarlyStopping",
    "History",
    "LRFinderResult",
    "LRSweepResult",
    "ModelCheckpoint",
    "Trainer",
    "TrainingDiverged",
    "lr_find",
    "lr_sweep",
    "metric_value",
    "predict",
    "train_step",
]
