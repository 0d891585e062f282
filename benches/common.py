"""Shared helpers of the benchmarks: timing side by side, and the machine's description."""

from __future__ import annotations

import os
import platform
import time

import numpy as np


def interleaved_best(functions: dict, rounds: int = 5, block: int = 8, warmup: int = 2) -> dict:
    """Best wall time of each function, measured side by side.

    The functions take turns in blocks of ``block`` calls, so noise from the rest of a shared
    machine falls on all of them alike. Whole blocks, not single calls, alternate because a BLAS
    keeps its threads spinning for a while after each call; the first ``warmup`` calls of each
    block, which would pay for the previous library's spinning threads, are not timed.
    """
    best = {name: float("inf") for name in functions}
    for _ in range(rounds):
        for name, f in functions.items():
            for _ in range(warmup):
                f()
            for _ in range(block):
                start = time.perf_counter()
                f()
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def machine_description() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [f"machine: {cpu}, {os.cpu_count()} logical cores, numpy {np.__version__}"]
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                lines.append(
                    f"numpy BLAS: {pool.get('internal_api')} {pool.get('version')}, "
                    f"kernel {pool.get('architecture')}, {pool.get('num_threads')} threads"
                )
    except ImportError:
        lines.append("numpy BLAS: unknown (install threadpoolctl to report it)")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            lines.append(f"warning: {var}={os.environ[var]} is set and may slow numpy's BLAS")
    return "\n".join(lines)


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def start(threads: int):
    """Prints the machine and thread counts; returns torch (set to ``threads``) or None."""
    print(machine_description())
    print(f"saddlepoint threads: {threads}")
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(threads)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    return torch
