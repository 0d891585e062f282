"""saddlepoint: train neural networks fast on the CPU, and find out why training goes wrong.

The arithmetic runs in Rust kernels (``saddlepoint._core``) on NumPy arrays, in place, with the
GIL released; this package gives the PyTorch-like layers, losses and optimizers around them.
"""

from . import diagnose
from ._core import get_num_threads, set_num_threads
from .io import load_checkpoint, load_model, load_weights, save_checkpoint, save_model, save_weights
from .losses import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    log_softmax,
    one_hot,
    softmax,
)
from .nn import (
    BatchNorm1d,
    Dense,
    Dropout,
    HardSigmoid,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    Module,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    mlp,
)
from .optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    CosineAnnealingLR,
    ExponentialLR,
    InverseSqrtLR,
    LinearLR,
    LinearWarmup,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    Optimizer,
    ReduceLROnPlateau,
    RMSprop,
    SequentialLR,
    StepLR,
    clip_grad_norm_,
    clip_grad_value_,
    grad_norm,
)
from .training import (
    Callback,
    EarlyStopping,
    History,
    LRFinderResult,
    ModelCheckpoint,
    Trainer,
    TrainingDiverged,
    lr_find,
)

__version__ = "0.1.0"

__all__ = [
    "Adagrad", "Adam", "AdamW", "BCEWithLogitsLoss", "BatchNorm1d", "Callback", "Dropout",
    "EarlyStopping", "History", "LayerNorm", "ModelCheckpoint", "Trainer", "TrainingDiverged",
    "load_checkpoint", "load_model", "load_weights", "save_checkpoint", "save_model", "save_weights", "CosineAnnealingLR", "CrossEntropyLoss",
    "Dense", "ExponentialLR", "HardSigmoid", "Identity", "InverseSqrtLR", "L1Loss", "LRFinderResult",
    "LRScheduler", "LeakyReLU", "Linear", "LinearLR", "LinearWarmup", "MSELoss", "Module",
    "MultiStepLR", "OneCycleLR", "Optimizer", "Parameter", "RMSprop", "ReLU",
    "ReduceLROnPlateau", "SGD", "Sequential", "SequentialLR", "Sigmoid", "StepLR", "Tanh",
    "clip_grad_norm_", "clip_grad_value_", "diagnose", "get_num_threads", "grad_norm", "log_softmax",
    "lr_find", "mlp", "one_hot", "set_num_threads", "softmax",
]
