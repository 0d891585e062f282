"""Plain NumPy twins of every kernel: the formulas written the obvious way, in float64."""

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
