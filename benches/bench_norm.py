"""BatchNorm1d forward + backward (training mode) in float32: saddlepoint against NumPy (and
PyTorch if present), side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_norm.py
"""

from __future__ import annotations

import numpy as np

import saddlepoint as sp
from saddlepoint.bench.kernels import numpy_batch_norm

from common import interleaved_best, start

SHAPES = [(128, 512), (1024, 512)]


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
