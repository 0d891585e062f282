"""Exact Hessian-vector products by Pearlmutter's R-operator (forward-over-reverse), in float64.

For a direction ``v`` in parameter space, ``R{·}`` is the directional derivative along ``v``. The
forward pass carries each activation ``a`` and ``R{a}``; the backward pass carries each gradient
``g`` and ``R{g}``; ``R{∇θ L} = H v``. Each layer owns its part of that math: the pair
``r_forward``/``r_backward`` next to its ``forward``/``backward`` (the protocol is documented on
:class:`~saddlepoint.nn.Module`), and a container chains its children's. This module is only the
driver: the model's pass forward, the loss's curvature, the pass back. A model with a layer that
has no pair falls back to central differences of the whole gradient
(:meth:`Objective.hessian_vector_product`), which says so.

Piecewise-linear activations (ReLU, hard sigmoid) have ``f'' = 0`` away from their kinks, as in
PyTorch's double backward; finite differences of the gradient would instead jump across a kink.

The loss's own curvature ``∂²L/∂o² · R{o}`` (in output space, where every loss here is smooth,
except L1 whose second derivative is 0) is a central difference of the loss's analytic gradient,
so class weights, label smoothing and probability targets follow the loss's code exactly.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..losses import CrossEntropyLoss, L1Loss, MSELoss


def without_r_operator(model) -> str | None:
    """Which layer of ``model`` (depth first) has no exact R-operator pair, as ``"Name (layer
    'path')"``, or None when every one has.

    A pair counts only where the class that defines it is the class that defines ``forward``
    and ``backward``, or a subclass of it: a subclass that changes ``forward`` but inherits
    ``r_forward`` would get the products of its parent's function.
    """
    for path, layer in _walk(model, ""):
        kind = type(layer)
        if not all(callable(getattr(layer, name, None)) for name in ("r_forward", "r_backward")):
            return f"{kind.__name__} ({_where(path)})"
        for plain, exact in (("forward", "r_forward"), ("backward", "r_backward")):
            if not issubclass(_defining_class(kind, exact), _defining_class(kind, plain)):
                return f"{kind.__name__} ({_where(path)}: it overrides {plain} but not {exact})"
    return None


def _walk(layer, path: str) -> Iterator[tuple[str, object]]:
    yield path, layer
    children = getattr(layer, "named_children", None)
    for name, child in children() if children is not None else ():
        yield from _walk(child, f"{path}.{name}" if path else name)


def _where(path: str) -> str:
    return f"layer {path!r}" if path else "the model"


def _defining_class(kind: type, name: str) -> type:
    """The class in ``kind``'s MRO whose body defines ``name`` (``object`` if none does)."""
    return next((c for c in kind.__mro__ if name in vars(c)), object)


def _tile(target, k: int):
    target = np.asarray(target)
    return np.concatenate([target] * k) if k > 1 else target


def loss_curvature(loss, output, target, directions) -> np.ndarray:
    """``∂²L/∂o² · d`` at ``output`` (N, ...) for each of the ``directions`` (k, N, ...), by
    central differences of the loss's gradient (exact for MSE; relative error about 1e-10 for
    cross-entropy and BCE, whose third derivatives are bounded).

    Each direction is scaled to a largest entry of 1 before differencing (the product is linear
    in it), and the k copies of the batch are evaluated as one batch of k·N samples, whose mean
    loss is 1/k of the sum of the copies' mean losses.
    """
    if type(loss) is L1Loss:
        return np.zeros_like(directions)
    k = directions.shape[0]
    scales = np.max(np.abs(directions.reshape(k, -1)), axis=1)
    scales[scales == 0] = 1.0
    unit = directions / scales.reshape((k,) + (1,) * (directions.ndim - 1))
    if type(loss) is MSELoss:
        h = 1.0  # the gradient is linear in the output: any step is exact
    else:
        # Cross-entropy does not change when a row of logits is shifted, so the rows are
        # centred first: a large common offset would otherwise swamp the step in rounding.
        # The step is absolute because these losses' third derivatives are bounded by 1.
        if type(loss) is CrossEntropyLoss and output.ndim == 2:
            output = output - output.max(axis=1, keepdims=True)
        h = np.finfo(np.float64).eps ** (1 / 3)
    tiled = np.broadcast_to(output, directions.shape).reshape((-1,) + output.shape[1:])
    targets = _tile(target, k)
    flat = unit.reshape(tiled.shape)
    loss(tiled + h * flat, targets)
    plus = loss.backward()
    loss(tiled - h * flat, targets)
    minus = loss.backward()
    curvature = ((plus - minus) * (k / (2 * h))).reshape(directions.shape)
    return curvature * scales.reshape((k,) + (1,) * (directions.ndim - 1))


def hessian_vector_products(model, loss, chunks, directions: dict) -> dict:
    """``{name: (k, *shape) blocks of H V}`` summed over ``chunks`` of ``(x, y, weight)``;
    ``directions`` maps each name of ``model.named_parameters()`` to its ``(k, *shape)`` blocks
    of the k directions ``V``. Every layer of ``model`` must have its R-operator pair
    (:func:`without_r_operator` is None)."""
    result = {name: np.zeros_like(block) for name, block in directions.items()}
    k = next(iter(directions.values())).shape[0]
    for x, y, weight in chunks:
        output, r_output = model.r_forward(x, None, directions)  # R{x} = 0: data is constant
        if r_output is None:  # no parameter before the loss
            r_output = np.zeros((k,) + output.shape)
        loss(output, y)
        g = loss.backward() * weight
        model.r_backward(g, loss_curvature(loss, output, y, r_output) * weight, directions, result)
    return result
