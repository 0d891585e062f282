"""Layers and models: the module protocol, parameters, dense layers, activations, normalization,
dropout and containers."""

from .activations import ACTIVATIONS, Activation, HardSigmoid, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .builders import cnn_config, dense_config, mlp, mlp_config, widen_config
from .containers import Sequential
from .conv import Conv2d
from .dropout import Dropout
from .flatten import Flatten, Unflatten
from .linear import Dense, Linear
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .spec import from_config, register_layer, registered_layers

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "MaxPool2d",
    "ACTIVATIONS",
    "Activation",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dense",
    "Dropout",
    "Flatten",
    "HardSigmoid",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "Unflatten",
    "cnn_config",
    "dense_config",
    "from_config",
    "mlp",
    "mlp_config",
    "register_layer",
    "registered_layers",
    "widen_config",
]
