"""saddlepoint: train neural networks fast on the CPU, and find out why training goes wrong.

The arithmetic runs in Rust kernels (``saddlepoint._core``) on NumPy arrays, in place, with the
GIL released; this package gives the PyTorch-like layers, losses and optimizers around them.
"""

from ._core import get_num_threads, set_num_threads
from .layers import (
    Dense,
    HardSigmoid,
    Identity,
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
from .losses import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    log_softmax,
    one_hot,
    softmax,
)
from .optim import SGD, Optimizer

__version__ = "0.1.0"

__all__ = [
    "BCEWithLogitsLoss", "CrossEntropyLoss", "Dense", "HardSigmoid", "Identity", "L1Loss",
    "LeakyReLU", "Linear", "MSELoss", "Module", "Optimizer", "Parameter", "ReLU", "SGD",
    "Sequential", "Sigmoid", "Tanh", "get_num_threads", "log_softmax", "mlp", "one_hot",
    "set_num_threads", "softmax",
]
