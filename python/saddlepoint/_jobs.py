"""Several independent trainings at once, through ``joblib.Parallel``.

``n_jobs`` means what it means in scikit-learn: None runs the jobs one after another in this
process unless a ``joblib.parallel_config(n_jobs=...)`` context says otherwise; ``-1`` uses every
core, ``-2`` all but one, and so on. The backend is joblib's: local processes (loky) by default,
or a Ray or Dask cluster under ``joblib.parallel_config(backend="ray" | "dask")``, with no other
change. Each job is seeded as in a serial run, and the kernels' results do not depend on the
thread count, so the results are the serial run's exactly.
"""

from joblib import Parallel, delayed

from .validation import is_integer


def check_n_jobs(n_jobs):
    """``n_jobs`` as given, when it is None or a non-zero whole number.

    Raises
    ------
    TypeError, ValueError
        Naming ``n_jobs``, for another type or 0.
    """
    if n_jobs is None:
        return None
    if not is_integer(n_jobs):
        raise TypeError(f"n_jobs must be None or a whole number of jobs, got {type(n_jobs).__name__}")
    if n_jobs == 0:
        raise ValueError("n_jobs must be None, a positive number of jobs, or -1 for one per core, got 0")
    return int(n_jobs)


def run_jobs(function, arguments, n_jobs):
    """``function(*args)`` for each ``args`` of ``arguments``, as an iterator of the results in
    order, each yielded as soon as it and those before it are done (all at the end with a
    backend that cannot do otherwise).

    ``arguments`` is read lazily, one tuple as each job is dispatched: a run one job at a time
    can decide from the time left whether to make the next one.
    """
    n_jobs = check_n_jobs(n_jobs)
    try:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    except ValueError:  # a backend that hands back all the results at the end (Ray's)
        parallel = Parallel(n_jobs=n_jobs)
    return iter(parallel(delayed(function)(*args) for args in arguments))
