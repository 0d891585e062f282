"""MaxPool2d(2) forward + backward in float32, as a training step runs it (reused buffers):
saddlepoint against NumPy (a reshape and an argmax) and PyTorch if present, side by side, on
LeNet's two pooled maps and a 64-channel 32 x 32 map.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_pool.py [--threads 2]
"""

from __future__ import annotations

import argparse

import numpy as np

import saddlepoint as sp
from saddlepoint.bench.timing import Repeats, interleaved
from saddlepoint.nn.scratch import reusing_buffers

from common import start

SHAPES = [(64, 6, 24, 24), (64, 16, 8, 8), (32, 64, 32, 32)]


def numpy_max_pool(x: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
    """2 x 2 max pooling of even-sized maps and its input gradient, in NumPy."""
    n, c, h, w = x.shape
    windows = (
        x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    )
    at = windows.argmax(axis=-1)
    np.take_along_axis(windows, at[..., None], axis=-1)  # the forward's output
    grad = np.zeros_like(windows)
    np.put_along_axis(grad, at[..., None], grad_output[..., None], axis=-1)
    return grad.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=sp.get_num_threads())
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    sp.set_num_threads(args.threads)
    torch = start(args.threads)
    print()
    print(f"{'shape':<18}{'library':<14}{'best us':>10}{'median us':>11}{'speedup (best, median)':>26}")
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        layer = sp.nn.MaxPool2d(2)
        grad_output = rng.standard_normal(layer.forward(x).shape, dtype=np.float32)

        def ours():
            with reusing_buffers():
                layer.forward(x)
                layer.backward(grad_output)

        runs = {"saddlepoint": ours, "numpy": lambda: numpy_max_pool(x, grad_output)}
        if torch is not None:
            xt, gt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(grad_output)

            def theirs():
                xt.grad = None
                torch.nn.functional.max_pool2d(xt, 2).backward(gt)

            runs["torch"] = theirs
        block = max(4, int(2e6 / x.size))
        measured = interleaved(runs, Repeats(rounds=args.rounds, block=block, warmup=2))
        best, median = measured["saddlepoint"]
        for name, (b, m) in measured.items():
            ratio = f"{b / best:.2f}x, {m / median:.2f}x" if name != "saddlepoint" else ""
            print(f"{str(shape):<18}{name:<14}{b * 1e6:>10.1f}{m * 1e6:>11.1f}{ratio:>26}")


if __name__ == "__main__":
    main()
