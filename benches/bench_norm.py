"""BatchNorm1d forward + backward (training mode) in float32: saddlepoint against NumPy (and
PyTorch if present), side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_norm.py
"""

from __future__ import annotations

import numpy as np

import saddlepoint as sp

from common import interleaved_best, start

SHAPES = [(128, 512), (1024, 512)]


def numpy_batch_norm(x, dy, gamma, beta, running_mean, running_var, eps=1e-5, momentum=0.1):
    """Forward and backward as one would write them in NumPy."""
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean) * invstd
    y = xhat * gamma + beta
    running_mean *= 1 - momentum
    running_mean += momentum * mean
    running_var *= 1 - momentum
    running_var += momentum * var * n / (n - 1)
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    dx = gamma * invstd / n * (n * dy - dbeta - xhat * dgamma)
    return y, dx, dgamma, dbeta


def main() -> None:
    torch = start(sp.get_num_threads())
    print()
    print(f"{'shape':<12}{'library':<14}{'us':>10}{'vs numpy':>10}")
    rng = np.random.default_rng(0)
    for n, c in SHAPES:
        x = rng.standard_normal((n, c), dtype=np.float32)
        dy = rng.standard_normal((n, c), dtype=np.float32)
        layer = sp.BatchNorm1d(c)
        gamma, beta = np.ones(c, np.float32), np.zeros(c, np.float32)
        rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)

        def ours():
            layer.forward(x)
            layer.backward(dy)

        runs = {"saddlepoint": ours, "numpy": lambda: numpy_batch_norm(x, dy, gamma, beta, rm, rv)}
        if torch is not None:
            module = torch.nn.BatchNorm1d(c)
            xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

            def theirs():
                module(xt).backward(dyt)

            runs["torch"] = theirs
        best = interleaved_best(runs, rounds=5, block=50)
        for name, seconds in best.items():
            print(f"{f'{n} x {c}':<12}{name:<14}{seconds * 1e6:>10.1f}{best['numpy'] / seconds:>9.1f}x")


if __name__ == "__main__":
    main()
