"""saddlepoint.sklearn's MLPClassifier and MLPRegressor against scikit-learn's, side by side: the
same settings (scikit-learn's defaults, ``random_state=0``), the same data and the same 5 folds;
the 5-fold score and the time the 5 fits take, interleaved over the rounds (the order alternates
each round), best and median.

    python benches/bench_sklearn.py [--rounds 3] [--threads N]

``--threads N`` caps both libraries at N threads: saddlepoint's pool (``set_num_threads``) and
NumPy's BLAS (``threadpoolctl.threadpool_limits``); without it each runs with its own default.

Classification: the digits (1797 images, pixels / 16), stratified shuffled folds. Regression: the
diabetes set (442 rows), the features standardized and the target divided by its standard
deviation (both fixed transforms of the whole set, the same for both libraries), shuffled folds.
Both libraries compute in float64, the dtype of the data, as scikit-learn does; a row with the
data in float32 shows what saddlepoint gains there. Unset ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` for this command: NumPy's OpenBLAS is fastest here without them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import warnings

import numpy as np
from sklearn import __version__ as sklearn_version
from sklearn import neural_network
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from threadpoolctl import threadpool_info, threadpool_limits

import saddlepoint
from saddlepoint import sklearn as sp_sklearn


def problems():
    """``(name, X, y, folds, scorer name)`` of the two benchmark problems."""
    X, y = load_digits(return_X_y=True)
    yield "digits", X / 16.0, y, StratifiedKFold(5, shuffle=True, random_state=0), "accuracy"
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    yield "diabetes", X, y / y.std(), KFold(5, shuffle=True, random_state=0), "R²"


def run(estimator, X, y, folds) -> tuple[float, float, int]:
    """(mean 5-fold score, total fit seconds, total epochs) of one cross validation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = cross_validate(estimator, X, y, cv=folds, return_estimator=True)
    epochs = sum(e.n_iter_ for e in result["estimator"])
    return float(result["test_score"].mean()), float(result["fit_time"].sum()), epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="threads of both libraries (default: their own)"
    )
    args = parser.parse_args()
    if args.threads:
        saddlepoint.set_num_threads(args.threads)
        with threadpool_limits(limits=args.threads, user_api="blas"):
            compare(args)
    else:
        compare(args)


def compare(args) -> None:
    blas_threads = ",".join(str(p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas")
    blas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
        f"saddlepoint {saddlepoint.__version__} ({saddlepoint.get_num_threads()} threads), "
        f"NumPy {np.__version__} (BLAS threads {blas_threads}), scikit-learn {sklearn_version}; "
        f"OPENBLAS_* set: {blas or 'none'}"
    )
    print(
        "| set | estimator | 5-fold score | epochs | fit s, best | fit s, median | scikit-learn / this, best | median |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, X, y, folds, metric in problems():
        kind = "MLPClassifier" if metric == "accuracy" else "MLPRegressor"
        contenders = {
            "scikit-learn": (getattr(neural_network, kind)(random_state=0), X),
            "saddlepoint": (getattr(sp_sklearn, kind)(random_state=0), X),
            "saddlepoint, float32 data": (getattr(sp_sklearn, kind)(random_state=0), X.astype(np.float32)),
        }
        times: dict[str, list[float]] = {key: [] for key in contenders}
        scores: dict[str, tuple[float, int]] = {}
        for turn in range(args.rounds):
            order = list(contenders) if turn % 2 == 0 else list(reversed(contenders))
            for key in order:
                estimator, data = contenders[key]
                score, seconds, epochs = run(estimator, data, y, folds)
                times[key].append(seconds)
                scores[key] = (score, epochs)
        reference = times["scikit-learn"]
        for key in contenders:
            best, median = min(times[key]), statistics.median(times[key])
            score, epochs = scores[key]
            print(
                f"| {name} ({metric}) | {key} | {score:.4f} | {epochs} | {best:.2f} | {median:.2f} | "
                f"{min(reference) / best:.2f}x | {statistics.median(reference) / median:.2f}x |"
            )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
