"""One training epoch of a 784-512-256-10 ReLU MLP with Adam on synthetic data: saddlepoint's
Trainer against the same training in NumPy, scikit-learn's MLPClassifier (a partial_fit epoch)
and PyTorch when importable. "products only" is the floor: the epoch's matrix products alone,
through saddlepoint's kernels."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import nn, optim
from .._core import dense_backward, dense_forward
from ..losses import CrossEntropyLoss
from ..training import Trainer
from .machine import optional
from .timing import Repeats, Row, Sizes, interleaved, row

SIZES = (784, 512, 256, 10)
# Multiply-adds per sample: forward, weight gradient and input gradient of each layer, 2 FLOPs each.
FLOPS_PER_SAMPLE = 6 * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))


def synthetic(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.standard_normal((n, SIZES[0]), dtype=np.float32)
    w = rng.standard_normal((SIZES[0], SIZES[-1])).astype(np.float32)
    return X, (X @ w).argmax(axis=1)


def run_saddlepoint(X: np.ndarray, y: np.ndarray, batch_size: int) -> None:
    model = nn.mlp(SIZES, rng=0)
    trainer = Trainer(
        model,
        CrossEntropyLoss(),
        optim.Adam(model.parameters(), lr=1e-3),
        batch_size=batch_size,
        seed=0,
        verbose=0,
    )
    trainer.fit(X, y, epochs=1)


def run_products(X: np.ndarray, batch_size: int) -> None:
    """The floor: only the epoch's matrix products (each layer's forward, weight gradient and,
    past the first layer, input gradient) through saddlepoint's kernels, on one batch."""
    rng = np.random.default_rng(0)
    batch = min(batch_size, len(X))
    xs = [X[:batch]] + [rng.standard_normal((batch, n), dtype=np.float32) for n in SIZES[1:-1]]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(
            (
                xs[i],
                rng.standard_normal((n_out, n_in), dtype=np.float32),
                np.empty((batch, n_out), np.float32),
                np.empty((n_out, n_in), np.float32),
                np.empty((batch, n_in), np.float32) if i else None,
            )
        )
    for _ in range(0, len(X), batch_size):
        for x, w, out, _gw, _gx in layers:
            dense_forward(x, w, None, out)
        for x, w, out, gw, gx in reversed(layers):
            dense_backward(x, w, out, gw, None, gx, accumulate=False)


def run_numpy(X: np.ndarray, y: np.ndarray, batch_size: int) -> None:
    """The same network, loss and Adam written directly in NumPy (float32)."""
    rng = np.random.default_rng(0)
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(n_in)
        params += [
            rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32),
            rng.uniform(-bound, bound, n_out).astype(np.float32),
        ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    order = rng.permutation(len(X))
    for t, begin in enumerate(range(0, len(X), batch_size), start=1):
        idx = order[begin : begin + batch_size]
        xb, yb = X[idx], y[idx]
        acts = [xb]
        for i in range(0, len(params), 2):
            z = acts[-1] @ params[i] + params[i + 1]
            acts.append(np.maximum(z, 0) if i < len(params) - 2 else z)
        z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(yb)), yb] -= 1
        grad = p / len(yb)
        grads: list[Any] = [None] * len(params)
        for i in range(len(params) - 2, -1, -2):
            grads[i] = acts[i // 2].T @ grad
            grads[i + 1] = grad.sum(axis=0)
            if i > 0:
                grad = (grad @ params[i].T) * (acts[i // 2] > 0)
        for k, g in enumerate(grads):
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            params[k] -= 1e-3 / (1 - 0.9**t) * m[k] / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)


def run_sklearn(neural_network: Any, X: np.ndarray, y: np.ndarray, batch_size: int) -> None:
    """One epoch of scikit-learn's MLPClassifier: a first ``partial_fit`` over the whole set."""
    clf = neural_network.MLPClassifier(
        SIZES[1:-1], solver="adam", batch_size=batch_size, alpha=0.0, shuffle=True, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X, y, classes=np.arange(SIZES[-1]))


def run_torch(torch: Any, X: np.ndarray, y: np.ndarray, batch_size: int) -> None:
    torch.manual_seed(0)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    order = torch.randperm(len(X))
    for begin in range(0, len(X), batch_size):
        idx = order[begin : begin + batch_size]
        optimizer.zero_grad()
        loss_fn(model(Xt[idx]), yt[idx]).backward()
        optimizer.step()


def epochs(sizes: Sizes, torch: Any, peak: float | None) -> list[Row]:
    """One row per batch size; the libraries take turns, epoch after epoch, the best counts."""
    X, y = synthetic(sizes.samples, np.random.default_rng(0))
    neural_network = optional("sklearn.neural_network")
    rows = []
    for batch_size in sizes.batch_sizes:
        runs: dict[str, Callable[..., Any]] = {
            "saddlepoint": lambda b=batch_size: run_saddlepoint(X, y, b),
            "numpy": lambda b=batch_size: run_numpy(X, y, b),
        }
        if neural_network is not None:
            runs["scikit-learn"] = lambda b=batch_size: run_sklearn(neural_network, X, y, b)
        if torch is not None:
            runs["torch"] = lambda b=batch_size: run_torch(torch, X, y, b)
        runs["products only"] = lambda b=batch_size: run_products(X, b)
        # OpenBLAS's threads spin about 0.1 s after a call (its THREAD_TIMEOUT, 2^28 cycles): a
        # pause, not a whole untimed epoch, keeps the next library from paying for them.
        measured = interleaved(runs, Repeats(sizes.epochs, 1, 0, pause=0.25))
        rate = FLOPS_PER_SAMPLE * sizes.samples / measured["saddlepoint"][0]
        rows.append(
            row(
                "epoch",
                f"MLP epoch {'-'.join(map(str, SIZES))} Adam, {sizes.samples:,} samples, batch {batch_size}",
                measured,
                limit="GEMM peak",
                share=rate / peak if peak else None,
                rate=f"{rate / 1e9:.0f} GFLOP/s",
            )
        )
    return rows
