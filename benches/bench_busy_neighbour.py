"""Training epochs of the 784-512-256-10 MLP with one thread and two, on an idle machine and beside
another busy process (``python -c 'while True: pass'``, started by this script), interleaved. Each
epoch runs in a fresh process (after one untimed epoch: beside a busy process the thread pool
takes a few hundred milliseconds to settle on running serially); the table gives the best and
median over the rounds.

    python benches/bench_busy_neighbour.py [--rounds 3] [--samples 12800] [--batch-sizes 32,128,512]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def epoch_times(threads: int, batch: int, samples: int, repeats: int) -> list[float]:
    """Runs in the child process: one untimed epoch, then ``repeats`` timed ones."""
    import numpy as np

    import saddlepoint as sp
    from saddlepoint.bench.epoch import run_saddlepoint, synthetic

    X, y = synthetic(samples, np.random.default_rng(0))
    sp.set_num_threads(threads)
    run_saddlepoint(X, y, batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_saddlepoint(X, y, batch)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=12800)
    parser.add_argument("--batch-sizes", default="32,128,512")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(epoch_times(*args.child[:2], args.samples, repeats=args.child[2])))
        return
    times: dict[tuple[int, str, int], list[float]] = {}
    for batch in map(int, args.batch_sizes.split(",")):
        for turn in range(args.rounds):
            for load in ("idle", "busy"):
                busy = (
                    subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
                )
                try:
                    for threads in (1, 2) if turn % 2 == 0 else (2, 1):
                        child = [sys.executable, __file__, "--samples", str(args.samples)]
                        child += ["--child", str(threads), str(batch), "2"]
                        out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
                        times.setdefault((batch, load, threads), []).extend(json.loads(out))
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()
    print(
        "| batch | machine | 1 thread, best / median | 2 threads, best / median | 2 threads vs 1 (best, median) |"
    )
    print("|---|---|---|---|---|")
    for batch in map(int, args.batch_sizes.split(",")):
        for load in ("idle", "busy"):
            one, two = times[(batch, load, 1)], times[(batch, load, 2)]
            b1, m1, b2, m2 = min(one), statistics.median(one), min(two), statistics.median(two)
            print(
                f"| {batch} | {load} | {b1 * 1e3:.0f} / {m1 * 1e3:.0f} ms | {b2 * 1e3:.0f} / {m2 * 1e3:.0f} ms "
                f"| {b1 / b2:.2f}× / {m1 / m2:.2f}× |"
            )


if __name__ == "__main__":
    main()
