"""The same networks as ``saddlepoint bench --only epoch`` (python/saddlepoint/bench/epoch.py),
with the samples and batch sizes as options.

One epoch of a 784-512-256-10 ReLU MLP with Adam on 60,000 synthetic samples, at batch sizes
32, 128 and 512: saddlepoint's Trainer against the same training in NumPy, scikit-learn's
MLPClassifier and PyTorch (when installed), side by side. "products only" is the floor: the
epoch's matrix products alone, through saddlepoint's kernels.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_train.py [--samples N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import saddlepoint as sp
from saddlepoint.bench import epoch
from saddlepoint.bench.epoch import SIZES, run_numpy, run_products, run_saddlepoint, run_torch, synthetic

from common import start


def run_sklearn(X, y, batch_size):
    from sklearn import neural_network

    epoch.run_sklearn(neural_network, X, y, batch_size)


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
