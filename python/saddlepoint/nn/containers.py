"""Containers of layers: `Sequential` (``builders.mlp`` builds one from a spec)."""

from __future__ import annotations

from .module import Module
from .spec import layer_config, register_layer


@register_layer
class Sequential(Module):
    """Layers applied in order; ``backward`` runs them in reverse.

    Layers are named ``"0"``, ``"1"``, ... in parameter names, as in PyTorch.

    The container owns the protocol between its layers. Its parameters and their gradients are
    views of one flat buffer per dtype (:meth:`Module.flatten_parameters`; the outermost
    container's buffer wins, and it is made again by :meth:`to`, ``copy.deepcopy`` and pickle).
    Its input is data, whose gradient a trainer does not need: it tells its first layer so
    (:meth:`Module.requires_grad_input`), and ``backward`` then returns None, unless
    ``requires_grad_input()`` asked for the gradient with respect to the input.

    Parameters
    ----------
    *layers : Module or any object with ``forward`` and ``backward``
        The layers, applied in this order.

    Raises
    ------
    TypeError
        A layer without ``forward`` and ``backward``.

    Examples
    --------
    >>> model = sp.Sequential(sp.Dense(4, 8, rng=0), sp.ReLU(), sp.Dense(8, 3, rng=1))
    >>> [name for name, _ in model.named_parameters()]
    ['0.weight', '0.bias', '2.weight', '2.bias']
    >>> x = np.ones((5, 4), dtype=np.float32)
    >>> logits = model(x)
    >>> logits.shape
    (5, 3)
    >>> loss_fn = sp.CrossEntropyLoss()
    >>> loss = loss_fn(logits, np.array([0, 1, 2, 0, 1]))
    >>> model.backward(loss_fn.backward()) is None  # the data needs no gradient
    True
    >>> model[0].weight.grad.shape
    (8, 4)
    """

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
                raise TypeError(
                    f"layer {i} must have forward and backward methods, got {type(layer).__name__}"
                )
        self.layers = list(layers)
        self._grad_input = False
        self._tell_layers()
        self.flatten_parameters()

    def requires_grad_input(self, requires: bool = True) -> "Sequential":
        """Whether ``backward`` returns the gradient with respect to the input (by default it
        does not: the first layer skips it). Returns the container."""
        self._grad_input = bool(requires)
        self._tell_layers()
        return self

    def _tell_layers(self) -> None:
        """The first layer computes its input gradient only if this container must return it;
        every other layer feeds the one before it. Leading reshapes (layers with
        ``passes_grad_input_hint``, such as ``Unflatten``) count as part of the input, so the
        layer after them is told too: a CNN on flat rows skips its first convolution's input
        gradient."""
        leading = True
        for layer in self.layers:
            tell = getattr(layer, "requires_grad_input", None)
            if tell is not None:
                tell(self._grad_input if leading else True)
            leading = leading and getattr(layer, "passes_grad_input_hint", False)

    def to(self, dtype) -> "Sequential":
        super().to(dtype)
        self.flatten_parameters()
        return self

    def __setstate__(self, state) -> None:
        # Copies (deepcopy, pickle) bring each parameter as its own array: pack them again.
        self.__dict__.update(state)
        self.flatten_parameters()

    def named_children(self):
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output):
        """Back-propagates through every layer, accumulating their parameters' gradients.
        Returns the gradient with respect to the input if :meth:`requires_grad_input` asked
        for it, else None (its first layer was told to skip it)."""
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output if self._grad_input else None

    def r_forward(self, x, rx, v):
        """The layers' R-operator pairs chained (see Module); ``v`` is keyed ``"0.weight"``, ...
        Exact when every layer has its pair (``diagnose.rop.without_r_operator`` checks)."""
        for i, layer in enumerate(self.layers):
            if not hasattr(layer, "r_forward"):
                raise TypeError(f"layer {i} ({type(layer).__name__}) has no r_forward/r_backward pair")
        for i, layer in enumerate(self.layers):
            x, rx = layer.r_forward(
                x, rx, {k[len(f"{i}.") :]: b for k, b in v.items() if k.startswith(f"{i}.")}
            )
        return x, rx

    def r_backward(self, g, rg, v, rgrads):
        for i in reversed(range(len(self.layers))):
            own = [{k[len(f"{i}.") :]: b for k, b in d.items() if k.startswith(f"{i}.")} for d in (v, rgrads)]
            g, rg = self.layers[i].r_backward(g, rg, *own)
        return (g, rg) if self._grad_input else (None, None)

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
