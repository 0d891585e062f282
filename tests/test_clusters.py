"""Model selection on real engines started on this machine and torn down (issue 16): a local Dask
cluster and a local Ray instance each run a GridSearchCV over saddlepoint's estimator and
saddlepoint's cross_validate(n_jobs=2) through joblib's backend for them, and give exactly the
serial run's results; their workers run saddlepoint on one thread each. Skipped where the
extra (saddlepoint[dask], saddlepoint[ray]) is not installed.

Run as a script (``python tests/test_clusters.py ray``) this file does the Ray side in its own
process, which ``ray.init`` and ``ray.shutdown`` then leave as they found it, and prints the
results as JSON.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from importlib.util import find_spec

import numpy as np
import pytest
from joblib import Parallel, delayed, parallel_config
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

import saddlepoint as sp
from saddlepoint.data import cross_validate
from saddlepoint.sklearn import MLPClassifier

GRID = {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-2]}


def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:500]), y[:500]


def digits_trainer(lr=1e-3):
    model = sp.mlp([64, 32, 10], rng=0)
    optimizer = sp.Adam(model.parameters(), lr=lr)
    return sp.Trainer(
        model, sp.CrossEntropyLoss(), optimizer, metrics=["accuracy"], batch_size=32, seed=0, verbose=0
    )


def model_selection(n_jobs):
    """A grid search over MLPClassifier and a cross validation, as plain numbers and lists."""
    X, y = digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 5 epochs are meant to be few
        search = GridSearchCV(MLPClassifier(max_iter=5, random_state=0), GRID, cv=3, n_jobs=n_jobs).fit(X, y)
    folds = cross_validate(digits_trainer, X, y, epochs=3, cv=3, n_jobs=n_jobs)
    sweep = sp.lr_sweep(digits_trainer, X, y, lrs=[1e-3, 1e-2], epochs=2, n_jobs=n_jobs)
    results = search.cv_results_
    return {
        "params": [
            {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()} for p in results["params"]
        ],
        "test_scores": [results[f"split{i}_test_score"].tolist() for i in range(3)],
        "best_index": int(search.best_index_),
        "best_coefs": [c.tolist() for c in search.best_estimator_.coefs_],
        "fold_scores": folds.scores,
        "fold_losses": [h["loss"] for h in folds.histories],
        "sweep": sweep.to_dict(),
    }


def _pid_and_threads(_):
    return os.getpid(), sp.get_num_threads()


def workers_seen():
    """The processes and saddlepoint thread counts of 8 jobs run by the current joblib backend."""
    seen = Parallel(n_jobs=2)(delayed(_pid_and_threads)(i) for i in range(8))
    return sorted({pid for pid, _ in seen}), sorted({threads for _, threads in seen})


@pytest.mark.skipif(find_spec("distributed") is None, reason="needs saddlepoint[dask] (dask[distributed])")
def test_a_local_dask_cluster_gives_the_serial_results(tmp_path):
    import logging

    import dask
    from distributed import Client, LocalCluster

    serial = model_selection(n_jobs=None)
    # The workers' scratch space (and its lock files) in tmp_path, removed with it.
    with dask.config.set({"temporary-directory": str(tmp_path)}):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        with cluster, Client(cluster) as client:
            worker_pids = set(client.run(os.getpid).values())
            with parallel_config(backend="dask"):
                on_dask = model_selection(n_jobs=2)
                pids, threads = workers_seen()
    assert on_dask == serial
    assert set(pids) <= worker_pids and os.getpid() not in pids
    assert threads == [1]  # Dask's nanny sets OMP_NUM_THREADS=1 in its workers


@pytest.mark.skipif(find_spec("ray") is None, reason="needs saddlepoint[ray] (ray)")
def test_a_local_ray_instance_gives_the_serial_results():
    serial = model_selection(n_jobs=None)
    # Ray's session files (logs, sockets) go to a folder of their own, removed after: a short
    # path, as the sockets in it must be (108 bytes at most on Linux), which tmp_path may not be.
    ray_files = tempfile.mkdtemp(prefix="sp-ray-")
    try:
        done = subprocess.run(
            [sys.executable, __file__, "ray"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=os.path.dirname(__file__),
            env={**os.environ, "RAY_TMPDIR": ray_files},
        )
    finally:
        shutil.rmtree(ray_files, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    on_ray = json.loads(done.stdout.strip().splitlines()[-1])
    assert on_ray["results"] == json.loads(json.dumps(serial))
    assert on_ray["driver_pid"] not in on_ray["pids"] and on_ray["pids"]
    assert on_ray["threads"] == [1]  # Ray sets OMP_NUM_THREADS to a task's CPUs, 1, in its workers


def _on_ray():
    import ray
    from ray.util.joblib import register_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 2**20)
    try:
        register_ray()
        with parallel_config(backend="ray"):
            results = model_selection(n_jobs=2)
            pids, threads = workers_seen()
    finally:
        ray.shutdown()
    print(json.dumps({"results": results, "pids": pids, "threads": threads, "driver_pid": os.getpid()}))


if __name__ == "__main__" and sys.argv[1:] == ["ray"]:
    np.seterr(all="raise")  # as in a test: no silent overflow
    _on_ray()
