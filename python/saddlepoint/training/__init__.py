"""Training: one step, the Trainer with its callbacks, history and metrics, and the learning-rate
range test."""

from ..nn.module import predict
from .callbacks import Callback, EarlyStopping, ModelCheckpoint
from .history import History
from .lr_find import LRFinderResult, lr_find
from .metrics import METRICS, metric_value
from .step import train_step
from .trainer import Trainer, TrainingDiverged

__all__ = [
    "METRICS",
    "Callback",
    "EarlyStopping",
    "History",
    "LRFinderResult",
    "ModelCheckpoint",
    "Trainer",
    "TrainingDiverged",
    "lr_find",
    "metric_value",
    "predict",
    "train_step",
]
