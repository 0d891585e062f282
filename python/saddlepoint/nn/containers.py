"""Containers of layers: `Sequential`, and `mlp` that builds one."""

from __future__ import annotations

import numpy as np

from ..validation import positive_int
from .activations import ACTIVATIONS
from .linear import Dense
from .module import Module


class Sequential(Module):
    """Layers applied in order; ``backward`` runs them in reverse.

    Layers are named ``"0"``, ``"1"``, ... in parameter names, as in PyTorch.
    """

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
                raise TypeError(
                    f"layer {i} must have forward and backward methods, got {type(layer).__name__}"
                )
        self.layers = list(layers)

    def named_children(self):
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output):
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output

    def __getitem__(self, index):
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


def mlp(sizes, activation: str = "relu", *, dtype=np.float32, rng=None) -> Sequential:
    """A multilayer perceptron: ``Dense`` layers of ``sizes`` with ``activation`` between them.

    ``mlp([64, 128, 10])`` is ``Sequential(Dense(64, 128), ReLU(), Dense(128, 10))``.
    """
    sizes = [positive_int("sizes[i]", s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least the input and output sizes, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    rng = np.random.default_rng(rng)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0:
            layers.append(ACTIVATIONS[activation]())
        layers.append(Dense(n_in, n_out, dtype=dtype, rng=rng))
    return Sequential(*layers)
