"""Dense layer forward + backward in float32: saddlepoint against NumPy (and PyTorch if present).

Run with NumPy's best BLAS kernel (see DESIGN.md):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_dense.py
"""

from __future__ import annotations

import numpy as np

import saddlepoint as sp

from common import interleaved_best, start

SHAPES = [(128, 784, 512), (1024, 1024, 1024)]


def saddlepoint_step(layer, x, dy):
    def run():
        layer.forward(x)
        layer.backward(dy)

    return run


def numpy_step(x, w, b, dy, gw, gb):
    def run():
        np.matmul(x, w.T) + b
        np.add(gw, dy.T @ x, out=gw)
        np.add(gb, dy.sum(axis=0), out=gb)
        dy @ w

    return run


def torch_step(torch, x, w, b, dy):
    xt = torch.from_numpy(x).requires_grad_(True)
    wt = torch.from_numpy(w.copy()).requires_grad_(True)
    bt = torch.from_numpy(b.copy()).requires_grad_(True)
    dyt = torch.from_numpy(dy)

    def run():
        torch.nn.functional.linear(xt, wt, bt).backward(dyt)

    return run


def main() -> None:
    torch = start(sp.get_num_threads())
    print()
    print(f"{'shape (N x in -> out)':<24}{'library':<14}{'ms':>9}{'GFLOP/s':>10}{'vs numpy':>10}")
    rng = np.random.default_rng(0)
    for n, n_in, n_out in SHAPES:
        layer = sp.Dense(n_in, n_out, rng=rng)
        x = rng.standard_normal((n, n_in)).astype(np.float32)
        dy = rng.standard_normal((n, n_out)).astype(np.float32)
        w, b = layer.weight.data, layer.bias.data
        runs = {
            "saddlepoint": saddlepoint_step(layer, x, dy),
            "numpy": numpy_step(x, w, b, dy, np.zeros_like(w), np.zeros_like(b)),
        }
        if torch is not None:
            runs["torch"] = torch_step(torch, x, w, b, dy)
        best = interleaved_best(runs)
        flops = 6.0 * n * n_in * n_out  # forward, weight gradient, input gradient
        for name, seconds in best.items():
            print(
                f"{f'{n} x {n_in} -> {n_out}':<24}{name:<14}{seconds * 1e3:>9.3f}"
                f"{flops / seconds / 1e9:>10.1f}{best['numpy'] / seconds:>9.2f}x"
            )


if __name__ == "__main__":
    main()
