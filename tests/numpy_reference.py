"""Plain NumPy twins of every kernel: the formulas written the obvious way, in float64."""

import math

import numpy as np


def dense_forward(x, w, b):
    y = x.astype(np.float64) @ w.astype(np.float64).T
    return y if b is None else y + b


def dense_backward(x, w, dy):
    x, w, dy = (a.astype(np.float64) for a in (x, w, dy))
    return dy.T @ x, dy.sum(axis=0), dy @ w


def activation(kind, x, slope=0.01):
    x = x.astype(np.float64)
    return {
        "identity": lambda: x,
        "relu": lambda: np.maximum(x, 0),
        "leaky_relu": lambda: np.where(x > 0, x, slope * x),
        "sigmoid": lambda: 1 / (1 + np.exp(-x)),
        "hard_sigmoid": lambda: np.clip(x + 3, 0, 6) / 6,
        "tanh": lambda: np.tanh(x),
    }[kind]()


def activation_derivative(kind, x, slope=0.01):
    x = x.astype(np.float64)
    s = 1 / (1 + np.exp(-x))
    return {
        "identity": lambda: np.ones_like(x),
        "relu": lambda: (x > 0).astype(np.float64),
        "leaky_relu": lambda: np.where(x > 0, 1.0, slope),
        "sigmoid": lambda: s * (1 - s),
        "hard_sigmoid": lambda: ((x > -3) & (x < 3)) / 6.0,
        "tanh": lambda: 1 - np.tanh(x) ** 2,
    }[kind]()


def mse(x, t):
    d = x.astype(np.float64) - t
    return np.mean(d**2), 2 * d / d.size


def l1(x, t):
    d = x.astype(np.float64) - t
    return np.mean(np.abs(d)), np.sign(d) / d.size


def bce_with_logits(z, t):
    z = z.astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    loss = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return loss.mean(), (p - t) / z.size


def log_softmax(z):
    z = z.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(z):
    return np.exp(log_softmax(z))


def cross_entropy(z, target, weight=None, smoothing=0.0):
    """PyTorch's cross_entropy (mean reduction), with labels or probabilities."""
    n, c = z.shape
    w = np.ones(c) if weight is None else weight.astype(np.float64)
    logp = log_softmax(z)
    if target.ndim == 1:
        onehot = np.eye(c)[target]
        q = (1 - smoothing) * onehot * w + smoothing / c * w
        denom = w[target].sum()
    else:
        q = ((1 - smoothing) * target + smoothing / c) * w
        denom = n
    loss = -(q * logp).sum() / denom
    grad = (q.sum(axis=1, keepdims=True) * np.exp(logp) - q) / denom
    return loss, grad


# --- optimizers: the documented formulas, in the parameter's dtype, one step at a time --------
def _grad(p, g, maximize, weight_decay):
    g = -g if maximize else g
    return g + weight_decay * p if weight_decay != 0 else g


def sgd(p, g, state, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False):
    g = _grad(p, g, maximize, weight_decay)
    if momentum != 0:
        if "b" not in state:
            state["b"] = g.copy()
        else:
            state["b"] = momentum * state["b"] + (1 - dampening) * g
        g = g + momentum * state["b"] if nesterov else state["b"]
    return p - lr * g


def adagrad(
    p, g, state, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, maximize=False
):
    state["t"] = state.get("t", 0) + 1
    state.setdefault("S", np.full_like(p, initial_accumulator_value))
    g = _grad(p, g, maximize, weight_decay)
    clr = lr / (1 + (state["t"] - 1) * lr_decay)
    state["S"] = state["S"] + g * g
    return p - clr * (g / (np.sqrt(state["S"]) + eps))


def rmsprop(
    p, g, state, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=False
):
    state.setdefault("v", np.zeros_like(p))
    g = _grad(p, g, maximize, weight_decay)
    state["v"] = state["v"] * alpha + (1 - alpha) * g * g
    if centered:
        ga = state.get("ga", np.zeros_like(p))
        state["ga"] = ga + (1 - alpha) * (g - ga)
        avg = np.sqrt(state["v"] - state["ga"] * state["ga"]) + eps
    else:
        avg = np.sqrt(state["v"]) + eps
    if momentum > 0:
        state["b"] = state.get("b", np.zeros_like(p)) * momentum + g / avg
        return p - lr * state["b"]
    return p - lr * (g / avg)


def adam(
    p,
    g,
    state,
    lr,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    decoupled=False,
):
    b1, b2 = betas
    state["t"] = t = state.get("t", 0) + 1
    m, v = state.get("m", np.zeros_like(p)), state.get("v", np.zeros_like(p))
    g = _grad(p, g, maximize, 0.0 if decoupled else weight_decay)
    if decoupled:
        p = p * (1 - lr * weight_decay)
    state["m"] = m = m + (1 - b1) * (g - m)
    state["v"] = v = v * b2 + (1 - b2) * g * g
    if amsgrad:
        state["vmax"] = v = np.maximum(state.get("vmax", np.zeros_like(p)), v)
    step_size = lr / (1 - b1**t)
    return p - step_size * (m / (np.sqrt(v) * (1 / math.sqrt(1 - b2**t)) + eps))


def foreach(step, params, grads, states, **hyperparameters):
    """A multi-tensor step as its per-tensor steps: ``step`` (one of the above) on each tensor."""
    return [step(p, g, state, **hyperparameters) for p, g, state in zip(params, grads, states)]


# --- normalization ------------------------------------------------------------------------------
def _channels_last(x):
    """(N, C), (N, C, L) or (N, C, H, W) -> (N·L, C) with L the positions."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _channels_back(y, shape):
    return np.moveaxis(y.reshape((shape[0],) + shape[2:] + (shape[1],)), -1, 1)


def batch_norm_forward(x, gamma, beta, eps, mean=None, var=None):
    """With mean/var None: batch statistics (biased variance). Returns y, batch mean, batch var."""
    flat = _channels_last(x.astype(np.float64))
    if mean is None:
        mean, var = flat.mean(axis=0), flat.var(axis=0)
    y = (flat - mean) / np.sqrt(var + eps) * gamma + beta
    return _channels_back(y, x.shape), mean, var


def batch_norm_backward(x, dy, gamma, eps, batch_stats=True, var=None, mean=None):
    flat, g = _channels_last(x.astype(np.float64)), _channels_last(dy.astype(np.float64))
    if batch_stats:
        mean, var = flat.mean(axis=0), flat.var(axis=0)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (flat - mean) * invstd
    m = flat.shape[0]
    dgamma, dbeta = (g * xhat).sum(axis=0), g.sum(axis=0)
    if batch_stats:
        dx = gamma * invstd / m * (m * g - dbeta - xhat * dgamma)
    else:
        dx = g * gamma * invstd
    return _channels_back(dx, x.shape), dgamma, dbeta


def layer_norm_forward(x, gamma, beta, eps, k):
    """Normalize over the last k dimensions."""
    axes = tuple(range(x.ndim - k, x.ndim))
    x = x.astype(np.float64)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def layer_norm_backward(x, dy, gamma, eps, k):
    axes = tuple(range(x.ndim - k, x.ndim))
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    d = np.prod(x.shape[x.ndim - k :])
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * invstd
    g = dy * gamma
    dx = (
        invstd
        / d
        * (d * g - g.sum(axis=axes, keepdims=True) - xhat * (g * xhat).sum(axis=axes, keepdims=True))
    )
    lead = tuple(range(x.ndim - k))
    return dx, (dy * xhat).sum(axis=lead), dy.sum(axis=lead)


def _splitmix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(size, p, seed, dtype):
    """The kernel's counter-based mask: keep element i when the top 53 bits of
    splitmix64(splitmix64(seed) ^ i·φ) are >= p·2⁵³; kept elements hold 1/(1 − p)."""
    with np.errstate(over="ignore"):
        base = _splitmix64(np.array([seed], dtype=np.uint64))[0]
        index = np.arange(size, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        bits = _splitmix64(base ^ index) >> np.uint64(11)
    keep = bits >= np.uint64(int(p * 2**53))
    return np.where(keep, 1.0 / (1.0 - p), 0.0).astype(dtype)
