"""Exact Hessian-vector products by Pearlmutter's R-operator (forward-over-reverse), in float64.

For a direction ``v`` in parameter space, ``R{·}`` is the directional derivative along ``v``. The
forward pass carries each activation ``a`` and ``R{a}``; the backward pass carries each gradient
``g`` and ``R{g}``; ``R{∇θ L} = H v``. A dense layer ``z = a Wᵀ + b`` gives ``R{z} = R{a} Wᵀ +
a Vᵀ + V_b`` forward and ``R{∇W} = R{g}ᵀ a + gᵀ R{a}``, ``R{g_in} = R{g} W + g V`` backward; an
elementwise ``f`` gives ``R{f(z)} = f'(z) R{z}`` and ``R{g_in} = f''(z) R{z} g + f'(z) R{g}``.
Piecewise-linear activations (ReLU, hard sigmoid) have ``f'' = 0`` away from their kinks, as in
PyTorch's double backward; finite differences of the gradient would instead jump across a kink.

The loss's own curvature ``∂²L/∂o² · R{o}`` (in output space, where every loss here is smooth,
except L1 whose second derivative is 0) is a central difference of the loss's analytic gradient,
so class weights, label smoothing and probability targets follow the loss's code exactly.

Supported layers: Dense, the built-in activations, Dropout and Identity (identities in eval
mode) and BatchNorm1d in eval mode with running statistics, nested in Sequential. Other models
fall back to central differences of the whole gradient (:meth:`Objective.hessian_vector_product`).
"""

from __future__ import annotations

import numpy as np

from ..losses import CrossEntropyLoss, L1Loss, MSELoss
from ..nn import (
    Activation,
    BatchNorm1d,
    Dense,
    Dropout,
    HardSigmoid,
    Identity,
    LeakyReLU,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)


def leaf_layers(model) -> list | None:
    """The model's layers in order, or None when one has no R-operator here. Types must match
    exactly: a subclass may compute something else in its ``forward``."""
    kind = type(model)
    if kind is Sequential:
        layers = []
        for child in model:
            inner = leaf_layers(child)
            if inner is None:
                return None
            layers += inner
        return layers
    if kind in (Dense, Dropout, ReLU, LeakyReLU, Sigmoid, Tanh, HardSigmoid, Identity):
        return [model]
    if kind is BatchNorm1d and model.track_running_stats:
        return [model]
    return None


def _relu(z, slope):
    return np.maximum(z, 0), (z > 0).astype(z.dtype), None


def _leaky_relu(z, slope):
    d1 = np.where(z > 0, 1.0, slope)
    return z * d1, d1, None


def _sigmoid(z, slope):
    s = 0.5 * (1 + np.tanh(0.5 * z))  # overflow-free logistic
    d1 = s * (1 - s)
    return s, d1, d1 * (1 - 2 * s)


def _tanh(z, slope):
    t = np.tanh(z)
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def _hard_sigmoid(z, slope):
    return np.clip(z + 3, 0, 6) / 6, np.where((z > -3) & (z < 3), 1 / 6, 0.0), None


def _identity(z, slope):
    return z, 1.0, None


#: kind -> f(z, slope) returning (value, f'(z), f''(z) or None when it is zero).
_ACTIVATIONS = {"relu": _relu, "leaky_relu": _leaky_relu, "sigmoid": _sigmoid, "tanh": _tanh,
                "hard_sigmoid": _hard_sigmoid, "identity": _identity}


def _channel_shape(x):
    """Shape that broadcasts a per-channel vector over ``(N, C)`` or ``(N, C, L)``."""
    return (1, -1) + (1,) * (x.ndim - 2)


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


def hessian_vector_products(layers, loss, chunks, directions: dict) -> dict:
    """``{id(parameter): (k, *shape) blocks of H V}`` summed over ``chunks`` of
    ``(x, y, weight)``; ``directions`` maps ``id(parameter)`` to its ``(k, *shape)`` blocks of
    the k directions ``V``."""
    result = {key: np.zeros_like(block) for key, block in directions.items()}
    k = next(iter(directions.values())).shape[0]
    for x, y, weight in chunks:
        a, Ra = x, None  # R{x} = 0: the data does not depend on the parameters
        saved = []
        for layer in layers:
            z, Rz, local = _forward(layer, a, Ra, directions)
            saved.append((local, Ra))
            a, Ra = z, Rz
        if Ra is None:  # a model without parameters before the loss
            Ra = np.zeros((k,) + a.shape)
        loss(a, y)
        g = loss.backward() * weight
        Rg = loss_curvature(loss, a, y, Ra) * weight
        for layer, (local, Ra_in) in zip(reversed(layers), reversed(saved)):
            g, Rg = _backward(layer, local, Ra_in, g, Rg, directions, result)
    return result


def _per_channel(vector, x_ndim):
    """(k, C) direction blocks shaped to broadcast over (k, N, C[, L])."""
    return vector.reshape((vector.shape[0], 1, -1) + (1,) * (x_ndim - 2))


def _forward(layer, a, Ra, V):
    """The layer's output, its R-derivatives (k, *shape) (``None`` for zero), and what the
    backward pass needs from this layer (its input, derivatives or normalized input)."""
    if isinstance(layer, Dense):
        W, VW = layer.weight.data, V[id(layer.weight)]
        z, Rz = a @ W.T, a @ VW.transpose(0, 2, 1)
        if Ra is not None:
            Rz += Ra @ W.T
        if layer.bias is not None:
            z, Rz = z + layer.bias.data, Rz + V[id(layer.bias)][:, None, :]
        return z, Rz, a
    if isinstance(layer, Activation):
        value, d1, d2 = _ACTIVATIONS[layer.kind](a, layer._slope())
        return value, None if Ra is None else d1 * Ra, (d1, d2)
    if isinstance(layer, BatchNorm1d):
        shape = _channel_shape(a)
        invstd = (1.0 / np.sqrt(layer.running_var + layer.eps)).reshape(shape)
        xhat = (a - layer.running_mean.reshape(shape)) * invstd
        if not layer.affine:
            return xhat, None if Ra is None else Ra * invstd, (invstd, xhat)
        gamma = layer.weight.data.reshape(shape)
        Ry = xhat * _per_channel(V[id(layer.weight)], a.ndim) + _per_channel(V[id(layer.bias)], a.ndim)
        if Ra is not None:
            Ry = Ry + Ra * (invstd * gamma)
        return xhat * gamma + layer.bias.data.reshape(shape), Ry, (invstd, xhat)
    return a, Ra, None  # Dropout and Identity in eval mode


def _backward(layer, local, Ra, g, Rg, V, out):
    """Gradient (N, ...) and its R-derivatives (k, N, ...) at the layer's input, given what
    :func:`_forward` kept (``local``) and the input's R-derivatives ``Ra``; adds the
    parameters' R-gradients to ``out``."""
    if isinstance(layer, Dense):
        W, VW = layer.weight.data, V[id(layer.weight)]
        out[id(layer.weight)] += Rg.transpose(0, 2, 1) @ local
        if Ra is not None:
            out[id(layer.weight)] += g.T @ Ra
        if layer.bias is not None:
            out[id(layer.bias)] += Rg.sum(axis=1)
        return g @ W, Rg @ W + g @ VW
    if isinstance(layer, Activation):
        d1, d2 = local
        Rg_in = d1 * Rg
        if d2 is not None and Ra is not None:
            Rg_in += d2 * Ra * g
        return d1 * g, Rg_in
    if isinstance(layer, BatchNorm1d):
        invstd, xhat = local
        if not layer.affine:
            return g * invstd, Rg * invstd
        axes = (1,) + tuple(range(3, xhat.ndim + 1))  # samples and length, per direction
        gamma = layer.weight.data.reshape(invstd.shape)
        R_gamma = Rg * xhat if Ra is None else Rg * xhat + g * Ra * invstd
        out[id(layer.weight)] += R_gamma.sum(axis=axes)
        out[id(layer.bias)] += Rg.sum(axis=axes)
        Vgamma = _per_channel(V[id(layer.weight)], xhat.ndim)
        return g * invstd * gamma, Rg * (invstd * gamma) + g * invstd * Vgamma
    return g, Rg
