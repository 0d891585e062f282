"""Optimizers, learning-rate schedules and gradient clipping."""

from .clipping import clip_grad_norm_, clip_grad_value_, grad_norm
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    InverseSqrtLR,
    LinearLR,
    LinearWarmup,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "InverseSqrtLR",
    "LRScheduler",
    "LinearLR",
    "LinearWarmup",
    "MultiStepLR",
    "OneCycleLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "clip_grad_norm_",
    "clip_grad_value_",
    "grad_norm",
]
