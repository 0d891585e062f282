"""saddlepoint's thread pool in the ecosystem's thread controls.

``threadpoolctl`` sees and limits the pool as it does BLAS and OpenMP: this module registers a
controller for it, so ``threadpool_info()`` lists it (``user_api`` and ``internal_api``
``"saddlepoint"``) and ``threadpool_limits(1)`` caps it, restoring the count on exit.

The default thread count comes from the environment when the package is imported:
``SADDLEPOINT_NUM_THREADS`` if set (a whole number of threads that
:func:`saddlepoint.set_num_threads` accepts, anything else refused), else ``OMP_NUM_THREADS``,
which the process pools of joblib (loky), Dask and Ray set in their workers to keep each
worker's inner threads within its share of the cores; else one thread per available core.
"""

import os
from importlib import metadata

import threadpoolctl

from ._core import set_num_threads

ENVIRONMENT_VARIABLE = "SADDLEPOINT_NUM_THREADS"
"""The environment variable that sets the default thread count."""

_LIMIT_SET_BY_WORKER_POOLS = "OMP_NUM_THREADS"


class SaddlepointController(threadpoolctl.LibController):
    """``threadpoolctl``'s controller of saddlepoint's kernel threads.

    ``threadpoolctl`` finds thread pools among the shared libraries loaded in the process: this
    one is ``saddlepoint._core``, told apart from other ``_core`` modules by the C functions it
    exports for this controller.
    """

    user_api = "saddlepoint"
    internal_api = "saddlepoint"
    filename_prefixes = ("_core",)
    check_symbols = ("saddlepoint_get_num_threads", "saddlepoint_set_num_threads")

    def get_num_threads(self):
        return self.dynlib.saddlepoint_get_num_threads()

    def set_num_threads(self, num_threads):
        if self.dynlib.saddlepoint_set_num_threads(int(num_threads)) != 0:
            set_num_threads(num_threads)  # refused again, raising the reason

    def get_version(self):
        try:
            return metadata.version("saddlepoint")
        except metadata.PackageNotFoundError:
            return None


def threads_from_environment(environ=os.environ):
    """The default thread count the environment sets, or None for one thread per core.

    Parameters
    ----------
    environ : mapping, default ``os.environ``

    Returns
    -------
    int or None
        ``SADDLEPOINT_NUM_THREADS`` if set; else the first count of ``OMP_NUM_THREADS`` (OpenMP
        allows a list, one count per nesting level) when it is a whole number of at least 1;
        else None. An ``OMP_NUM_THREADS`` that saddlepoint cannot read is left to the libraries
        it belongs to, as OpenMP itself ignores one it cannot read.

    Raises
    ------
    ValueError
        If ``SADDLEPOINT_NUM_THREADS`` is set but not a whole number of at least 1.
    """
    value = environ.get(ENVIRONMENT_VARIABLE)
    if value is not None:
        count = _whole_number(value)
        if count is None or count < 1:
            raise ValueError(
                f"the environment variable {ENVIRONMENT_VARIABLE} must be a whole number of threads, "
                f"at least 1, got {value!r}"
            )
        return count
    count = _whole_number(environ.get(_LIMIT_SET_BY_WORKER_POOLS, "").split(",")[0])
    if count is None or count < 1:
        return None
    return count


def _whole_number(text: str):
    text = text.strip()
    return int(text) if text.isdigit() else None


def configure() -> None:
    """Registers the controller with ``threadpoolctl`` and applies the environment's thread count.

    Raises
    ------
    ValueError
        If ``SADDLEPOINT_NUM_THREADS`` is not a thread count :func:`saddlepoint.set_num_threads`
        accepts.
    """
    threadpoolctl.register(SaddlepointController)
    count = threads_from_environment()
    if count is None:
        return
    try:
        set_num_threads(count)
    except ValueError as e:
        if ENVIRONMENT_VARIABLE not in os.environ:
            return  # an OMP_NUM_THREADS beyond saddlepoint's bound is OpenMP's business, not ours
        raise ValueError(f"the environment variable {ENVIRONMENT_VARIABLE}={count}: {e}") from None
