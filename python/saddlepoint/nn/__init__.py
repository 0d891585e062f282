"""Layers and models: the module protocol, parameters, dense layers, activations, normalization,
dropout and containers."""

from .activations import ACTIVATIONS, Activation, HardSigmoid, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .containers import Sequential, mlp
from .dropout import Dropout
from .linear import Dense, Linear
from .module import Module
from .normalization import BatchNorm1d, LayerNorm
from .parameter import Parameter

__all__ = [
    "ACTIVATIONS", "Activation", "BatchNorm1d", "Dense", "Dropout", "HardSigmoid", "Identity", "LayerNorm",
    "LeakyReLU", "Linear", "Module", "Parameter", "ReLU", "Sequential", "Sigmoid", "Tanh", "mlp",
]
