"""Model specs: the one place that says what a multilayer perceptron and the course's small
CNN are, as configs (see ``spec.py``) that :func:`~saddlepoint.nn.from_config` builds.
:func:`mlp`, the command line and the guide's reference models all build from
:func:`mlp_config` (and :func:`cnn_config`), and :func:`widen_config` makes a wider model by
rewriting a config, not by inspecting layers.
"""

from __future__ import annotations

import numpy as np

from ..validation import NoneOr, OneOf, float_dtype, positive_int
from .activations import ACTIVATIONS
from .dropout import Dropout
from .spec import from_config

#: Layers whose config holds no width: kept as they are when a model is widened.
_WIDTH_FREE = frozenset({cls.__name__ for cls in ACTIVATIONS.values()} | {"Dropout"})
#: The hidden layer a linear model gets when widened.
_LINEAR_HIDDEN = 64


def dense_config(in_features: int, out_features: int, *, bias: bool = True, dtype=np.float32) -> dict:
    """The config of a :class:`~saddlepoint.nn.Dense` layer.

    Examples
    --------
    >>> sp.nn.dense_config(4, 2)
    {'class': 'Dense', 'in_features': 4, 'out_features': 2, 'bias': True, 'dtype': 'float32'}
    """
    return {
        "class": "Dense",
        "in_features": in_features,
        "out_features": out_features,
        "bias": bias,
        "dtype": float_dtype(dtype).name,
    }


def mlp_config(
    sizes, activation: str = "relu", *, batch_norm: bool = False, dropout: float = 0.0, dtype=np.float32
) -> dict:
    """The config of a multilayer perceptron: ``Dense`` layers of ``sizes``; after each hidden
    one, ``BatchNorm1d`` (with ``batch_norm``), the activation and ``Dropout`` (``dropout > 0``).

    ``mlp_config([64, 128, 10])`` describes ``Sequential(Dense(64, 128), ReLU(), Dense(128, 10))``.

    Examples
    --------
    >>> config = sp.nn.mlp_config([4, 8, 2], dropout=0.1)
    >>> [layer["class"] for layer in config["layers"]]
    ['Dense', 'ReLU', 'Dropout', 'Dense']
    """
    sizes = [positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes)]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least the input and output sizes, got {sizes}")
    activation = OneOf(*sorted(ACTIVATIONS)).check("activation", activation)
    dropout = Dropout.constraints["p"].check("dropout", dropout)
    dtype = float_dtype(dtype)
    act = ACTIVATIONS[activation]().config()
    layers = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers.append(dense_config(n_in, n_out, dtype=dtype))
        if batch_norm:
            layers.append(_batch_norm_config("BatchNorm1d", n_out, dtype))
        layers.append(dict(act))
        if dropout:
            layers.append({"class": "Dropout", "p": dropout})
    layers.append(dense_config(sizes[-2], sizes[-1], dtype=dtype))
    return {"class": "Sequential", "layers": layers}


def _batch_norm_config(kind: str, features: int, dtype: np.dtype) -> dict:
    return {
        "class": kind,
        "num_features": features,
        "eps": 1e-5,
        "momentum": 0.1,
        "affine": True,
        "track_running_stats": True,
        "dtype": dtype.name,
    }


def cnn_config(
    image_shape,
    n_out: int,
    channels=(16, 32),
    hidden=(128,),
    activation: str = "relu",
    *,
    kernel_size: int = 3,
    batch_norm: bool = False,
    dropout: float = 0.0,
    dtype=np.float32,
) -> dict:
    """The config of the course's CNN on flat rows of pixels: ``Unflatten`` to ``image_shape``
    ``(C, H, W)``; per entry of ``channels``, a ``Conv2d`` (``kernel_size``, padding that keeps
    the size), ``BatchNorm2d`` (with ``batch_norm``), the activation and a 2×2 ``MaxPool2d``
    (while the maps are at least 2×2); ``Flatten``; then the dense part of
    :func:`mlp_config` with ``hidden`` layers and ``n_out`` outputs.

    ``cnn_config((1, 8, 8), 10)`` is conv 1→16 3×3, ReLU, pool (4×4), conv 16→32, ReLU, pool
    (2×2), flatten (128), dense 128→128, ReLU, dense 128→10: for the digits.

    Examples
    --------
    >>> model = sp.nn.from_config(sp.nn.cnn_config((1, 8, 8), 10), rng=0)
    >>> model(np.zeros((2, 64), dtype=np.float32)).shape  # rows of 64 pixels -> 10 logits
    (2, 10)
    """
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (channels, height, width), got {tuple(image_shape)}")
    c, h, w = (positive_int(f"image_shape[{i}]", n) for i, n in enumerate(image_shape))
    channels = [positive_int(f"channels[{i}]", n) for i, n in enumerate(channels)]
    kernel_size = positive_int("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (the padding keeps the size), got {kernel_size}")
    dtype = float_dtype(dtype)
    activation = OneOf(*sorted(ACTIVATIONS)).check("activation", activation)
    act = ACTIVATIONS[activation]().config()
    layers: list[dict] = [{"class": "Unflatten", "dim": 1, "unflattened_size": [c, h, w]}]
    for out in channels:
        layers.append(
            {
                "class": "Conv2d",
                "in_channels": c,
                "out_channels": out,
                "kernel_size": kernel_size,
                "padding": kernel_size // 2,
                "dtype": dtype.name,
            }
        )
        if batch_norm:
            layers.append(_batch_norm_config("BatchNorm2d", out, dtype))
        layers.append(dict(act))
        if h >= 2 and w >= 2:
            layers.append({"class": "MaxPool2d", "kernel_size": 2})
            h, w = h // 2, w // 2
        c = out
    layers.append({"class": "Flatten"})
    sizes = [c * h * w, *hidden, n_out]
    dense = mlp_config(sizes, activation, batch_norm=batch_norm, dropout=dropout, dtype=dtype)
    return {"class": "Sequential", "layers": layers + dense["layers"]}


def mlp(sizes, activation: str = "relu", *, dtype=np.float32, rng=None):
    """A multilayer perceptron: ``Dense`` layers of ``sizes`` with ``activation`` between them.

    ``mlp([64, 128, 10])`` is ``Sequential(Dense(64, 128), ReLU(), Dense(128, 10))``.

    Parameters
    ----------
    sizes : sequence of int
        Input size, hidden sizes, output size: at least two positive integers.
    activation : str
        A name of :data:`ACTIVATIONS` (``"relu"``, ``"sigmoid"``, ``"hard_sigmoid"``, ...).
    dtype : float32 or float64
        The parameters' dtype.
    rng : numpy.random.Generator, int or None
        Source of the initial weights, shared in order by the ``Dense`` layers.

    Returns
    -------
    Sequential

    Examples
    --------
    >>> sp.mlp([4, 16, 3], "relu", rng=0)
    Sequential(
      (0): Dense(in_features=4, out_features=16, bias=True, dtype=float32)
      (1): ReLU()
      (2): Dense(in_features=16, out_features=3, bias=True, dtype=float32)
    )
    """
    return from_config(mlp_config(sizes, activation, dtype=dtype), rng=rng)


def _leaf_configs(config) -> list | None:
    """The layer configs of a (nested) Sequential config in order, or None for another model."""
    if not isinstance(config, dict):
        return None
    if config.get("class") != "Sequential":
        return [config]
    leaves = []
    for layer in config.get("layers", []):
        inner = _leaf_configs(layer)
        if inner is None:
            return None
        leaves += inner
    return leaves


def _widened(layer: dict, hidden_in: bool, hidden_out: bool) -> dict | None:
    """``layer``'s config with its hidden widths doubled, or None if it holds a width it does not
    say how to change."""
    factor_in, factor_out = (2 if hidden_in else 1), (2 if hidden_out else 1)
    kind = layer.get("class")
    if kind == "Dense":
        return {
            **layer,
            "in_features": layer["in_features"] * factor_in,
            "out_features": layer["out_features"] * factor_out,
        }
    if kind == "BatchNorm1d":
        return {**layer, "num_features": layer["num_features"] * factor_in}
    if kind == "LayerNorm" and len(np.atleast_1d(layer["normalized_shape"])) == 1:
        (width,) = np.atleast_1d(layer["normalized_shape"])
        return {**layer, "normalized_shape": [int(width) * factor_in]}
    return dict(layer) if kind in _WIDTH_FREE else None


def widen_config(config: dict) -> dict | None:
    """A config as ``config`` with every hidden width doubled (the input and output sizes kept),
    as a flat Sequential; a single Dense layer becomes a one-hidden-layer ReLU network of 64
    units. None when the model holds no Dense layer or a layer whose widths are unknown here.

    Examples
    --------
    >>> wider = sp.nn.widen_config(sp.nn.mlp_config([4, 8, 2]))
    >>> [layer.get("out_features") for layer in wider["layers"]]
    [16, None, 2]
    """
    layers = _leaf_configs(config)
    if layers is None:
        return None
    dense = [i for i, layer in enumerate(layers) if layer.get("class") == "Dense"]
    if not dense:
        return None
    if len(dense) == 1:  # a linear model (perhaps with normalization around it)
        linear = layers[dense[0]]
        dtype = NoneOr(OneOf("float32", "float64")).check("dtype", linear.get("dtype")) or "float32"
        return {
            "class": "Sequential",
            "layers": [
                dense_config(linear["in_features"], _LINEAR_HIDDEN, dtype=dtype),
                {"class": "ReLU"},
                dense_config(_LINEAR_HIDDEN, linear["out_features"], dtype=dtype),
            ],
        }
    first, last = dense[0], dense[-1]
    built = []
    for i, layer in enumerate(layers):
        # A Dense layer's input is hidden unless it is the first; its output unless it is the last;
        # any other layer between the first and the last Dense sees hidden widths.
        hidden_in = first < i <= last
        hidden_out = i < last if layer.get("class") == "Dense" else hidden_in
        wide = _widened(layer, hidden_in, hidden_out)
        if wide is None:
            return None
        built.append(wide)
    return {"class": "Sequential", "layers": built}
