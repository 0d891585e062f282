"""Containers of layers: `Sequential` (``builders.mlp`` builds one from a spec)."""

from __future__ import annotations

from .module import Module
from .spec import layer_config, register_layer


@register_layer
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

    def config(self) -> dict:
        """``{"class": "Sequential", "layers": [each layer's config]}``."""
        return layer_config(self, layers=self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

