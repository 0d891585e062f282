"""One epoch of a 784-512-256-10 ReLU MLP with Adam on 60,000 synthetic samples, at batch sizes
32, 128 and 512: saddlepoint's Trainer against the same training in NumPy, scikit-learn's
MLPClassifier and PyTorch (when installed), side by side. "products only" is the floor: the
epoch's matrix products alone, through saddlepoint's kernels.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_train.py [--samples N]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import saddlepoint as sp

from common import start

SIZES = (784, 512, 256, 10)


def synthetic(n, rng):
    X = rng.standard_normal((n, SIZES[0]), dtype=np.float32)
    w = rng.standard_normal((SIZES[0], SIZES[-1])).astype(np.float32)
    return X, (X @ w).argmax(axis=1)


def run_saddlepoint(X, y, batch_size):
    model = sp.mlp(SIZES, rng=0)
    trainer = sp.Trainer(
        model,
        sp.CrossEntropyLoss(),
        sp.Adam(model.parameters(), lr=1e-3),
        batch_size=batch_size,
        seed=0,
        verbose=0,
    )
    trainer.fit(X, y, epochs=1)


def run_products(X, batch_size):
    """The floor: only the epoch's matrix products (each layer's forward, weight gradient and,
    past the first layer, input gradient) through saddlepoint's kernels, on one batch."""
    from saddlepoint import _core

    rng = np.random.default_rng(0)
    xs = [X[:batch_size]] + [rng.standard_normal((batch_size, n), dtype=np.float32) for n in SIZES[1:-1]]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(
            (
                xs[i],
                rng.standard_normal((n_out, n_in), dtype=np.float32),
                np.empty((batch_size, n_out), np.float32),
                np.empty((n_out, n_in), np.float32),
                np.empty((batch_size, n_in), np.float32) if i else None,
            )
        )
    for _ in range(0, len(X), batch_size):
        for x, w, out, gw, gx in layers:
            _core.dense_forward(x, w, None, out)
        for x, w, out, gw, gx in reversed(layers):
            _core.dense_backward(x, w, out, gw, None, gx, accumulate=False)


def run_numpy(X, y, batch_size):
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
    for t, start_ in enumerate(range(0, len(X), batch_size), start=1):
        idx = order[start_ : start_ + batch_size]
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
        grads = [None] * len(params)
        for i in range(len(params) - 2, -1, -2):
            grads[i] = acts[i // 2].T @ grad
            grads[i + 1] = grad.sum(axis=0)
            if i > 0:
                grad = (grad @ params[i].T) * (acts[i // 2] > 0)
        for k, g in enumerate(grads):
            m[k] = 0.9 * m[k] + 0.1 * g
            v[k] = 0.999 * v[k] + 0.001 * g * g
            params[k] -= 1e-3 / (1 - 0.9**t) * m[k] / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)


def run_sklearn(X, y, batch_size):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        SIZES[1:-1], solver="adam", batch_size=batch_size, max_iter=1, alpha=0.0, shuffle=True, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)


def run_torch(torch, X, y, batch_size):
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
    for start_ in range(0, len(X), batch_size):
        idx = order[start_ : start_ + batch_size]
        optimizer.zero_grad()
        loss_fn(model(Xt[idx]), yt[idx]).backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--batch-sizes", default="32,128,512")
    parser.add_argument("--repeats", type=int, default=2, help="epochs timed per library; the best counts")
    args = parser.parse_args()
    torch = start(sp.get_num_threads())
    rng = np.random.default_rng(0)
    X, y = synthetic(args.samples, rng)
    print(f"\none epoch of {'-'.join(map(str, SIZES))} ReLU MLP, Adam, {args.samples} samples\n")
    print(f"{'batch':>6}  {'library':<14}{'seconds':>9}{'saddlepoint is':>22}")
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        runs = {
            "saddlepoint": lambda: run_saddlepoint(X, y, batch_size),
            "numpy": lambda: run_numpy(X, y, batch_size),
            "scikit-learn": lambda: run_sklearn(X, y, batch_size),
        }
        if torch is not None:
            runs["torch"] = lambda: run_torch(torch, X, y, batch_size)
        runs["products only"] = lambda: run_products(X, batch_size)
        times = {name: float("inf") for name in runs}
        for _ in range(args.repeats):  # libraries take turns; the best epoch of each counts
            for name, run in runs.items():
                begin = time.perf_counter()
                run()
                times[name] = min(times[name], time.perf_counter() - begin)
        for name, seconds in times.items():
            if name == "products only":
                note = f"{seconds / times['saddlepoint']:.0%} of saddlepoint"
            else:
                note = "" if name == "saddlepoint" else f"{seconds / times['saddlepoint']:.2f}x faster"
            print(f"{batch_size:>6}  {name:<14}{seconds:>9.2f}{note:>22}")


if __name__ == "__main__":
    main()
