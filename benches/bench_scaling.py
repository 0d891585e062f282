"""Model selection scaled out: an 8-configuration grid search (3 folds: 24 fits of
saddlepoint.sklearn.MLPClassifier on the digits) on a local Dask cluster of 2 worker processes
against 1, each worker on one thread, in turns over the rounds; the engines' per-task overhead
(400 empty tasks through joblib on Dask and on Ray); and, from the measured per-fit time and Ray's
overhead, what a 200-configuration search would take on a cluster of 10 such 2-core machines.

    python benches/bench_scaling.py [--rounds 3] [--max-iter 500]

Needs the extras: ``pip install 'saddlepoint[dask]' 'saddlepoint[ray]'`` (Ray is optional: without
it the estimate uses Dask's overhead). Unset ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
import time
import warnings

import dask
from distributed import Client, LocalCluster
from joblib import Parallel, delayed, parallel_config
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from saddlepoint.sklearn import MLPClassifier

GRID = {"hidden_layer_sizes": [(32,), (64,)], "alpha": [1e-4, 1e-3], "learning_rate_init": [1e-3, 3e-3]}
FOLDS = 3
EMPTY_TASKS = 400
#: Dask's periodic bookkeeping, made rarer: its event-loop tick (20 ms by default), system and memory
#: monitors and statistical profiler run in every worker and cost the fits about 10% of a core on
#: this 2-core machine (measured: 1.66-1.78x with the defaults, 1.77-1.85x with these). A cluster
#: of short CPU-bound tasks can set them too (``dask.config.set`` or ``DASK_...`` variables).
QUIET_DASK = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "5s",
    "distributed.worker.profile.enabled": False,
}
#: The cluster of the estimate: machines, workers per machine, configurations searched.
NODES, WORKERS_PER_NODE, CONFIGURATIONS = 10, 2, 200


def search(X, y, max_iter: int) -> tuple[float, list[float]]:
    """Seconds of one grid search through the current joblib backend, and its mean scores.

    The driver is held to one thread too: on a cluster of one single-thread worker joblib's
    effective ``n_jobs`` is 1, and joblib then runs every fit in the calling process instead of
    dispatching it, where saddlepoint would otherwise use every core."""
    estimator = MLPClassifier(max_iter=max_iter, tol=0, n_iter_no_change=max_iter, random_state=0)
    start = time.perf_counter()
    with threadpool_limits(1):
        result = GridSearchCV(estimator, GRID, cv=FOLDS, n_jobs=-1, refit=False).fit(X, y)
    return time.perf_counter() - start, result.cv_results_["mean_test_score"].tolist()


def empty_task(i: int) -> int:
    return i


def overhead() -> float:
    """Seconds per empty task through joblib on the current backend (best of 3 batches)."""
    Parallel(n_jobs=-1)(delayed(empty_task)(i) for i in range(50))  # start-up not counted
    times = []
    for _ in range(3):
        start = time.perf_counter()
        Parallel(n_jobs=-1)(delayed(empty_task)(i) for i in range(EMPTY_TASKS))
        times.append((time.perf_counter() - start) / EMPTY_TASKS)
    return min(times)


def ray_overhead() -> float | None:
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        return None
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    try:
        register_ray()
        with parallel_config(backend="ray"):
            return overhead()
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=500, help="epochs of each fit (default 500)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X = X / 16
    times: dict[int, list[float]] = {1: [], 2: []}
    scores = set()
    dask.config.set(QUIET_DASK)  # for the rest of this script
    with tempfile.TemporaryDirectory() as scratch, dask.config.set({"temporary-directory": scratch}):
        settings = dict(
            threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        )
        clusters = {n: LocalCluster(n_workers=n, **settings) for n in (1, 2)}
        clients = {n: Client(cluster, set_as_default=False) for n, cluster in clusters.items()}
        try:
            for _ in range(args.rounds):
                for n, client in clients.items():
                    with client.as_current(), parallel_config(backend="dask"):
                        seconds, result = search(X, y, args.max_iter)
                    times[n].append(seconds)
                    scores.add(tuple(result))
            with clients[2].as_current(), parallel_config(backend="dask"):
                dask_overhead = overhead()
        finally:
            for closable in (*clients.values(), *clusters.values()):
                closable.close()
    fits = len(GRID["hidden_layer_sizes"]) * len(GRID["alpha"]) * len(GRID["learning_rate_init"]) * FOLDS
    for n in (1, 2):
        print(
            f"dask, {n} worker(s): best {min(times[n]):.2f} s, median {statistics.median(times[n]):.2f} s ({fits} fits)"
        )
    print(
        f"2 workers against 1: best {min(times[1]) / min(times[2]):.2f}x, median "
        f"{statistics.median(times[1]) / statistics.median(times[2]):.2f}x; the same scores: {len(scores) == 1}"
    )
    per_fit = min(times[1]) / fits
    ray_task = ray_overhead()
    print(f"per-task overhead: dask {1e3 * dask_overhead:.2f} ms", end="")
    print(f", ray {1e3 * ray_task:.2f} ms" if ray_task is not None else " (ray not installed)")
    task = ray_task if ray_task is not None else dask_overhead
    workers, tasks = NODES * WORKERS_PER_NODE, CONFIGURATIONS * FOLDS
    waves = math.ceil(tasks / workers)
    estimate = waves * per_fit + tasks * task  # the driver dispatches every task itself
    print(
        f"estimate: {CONFIGURATIONS} configurations x {FOLDS} folds = {tasks} fits of {per_fit:.3f} s on "
        f"{NODES} nodes x {WORKERS_PER_NODE} workers = {waves} waves, {waves * per_fit:.1f} s of fits + "
        f"{tasks * task:.2f} s of task overhead = {estimate:.1f} s, against {tasks * per_fit:.0f} s on one worker"
    )


if __name__ == "__main__":
    main()
