"""``saddlepoint bench``: the benchmarks of benches/ as one command.

It records the machine (:mod:`.machine`), measures the GEMM peak and the memory bandwidth, times
the hot kernels (:mod:`.kernels`), the training epoch (:mod:`.epoch`) and convolutional networks
(:mod:`.cnn`) against NumPy, scikit-learn and PyTorch when importable, the libraries taking
turns, and prints one table of times, ratios and shares of the machine's limits
(:mod:`.report`), plus JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from .._core import get_num_threads, set_num_threads
from . import cnn, epoch, kernels, machine, report
from .timing import FULL, QUICK, SHORT, Row, Sizes

GROUPS = ("machine", "gemm", "memory", "kernels", "optim", "norm", "epoch", "cnn")
"""The benchmark groups ``saddlepoint bench --only`` chooses from, in the order they run."""


def _groups(value: str) -> tuple[str, ...]:
    chosen = tuple(g.strip() for g in value.split(",") if g.strip())
    unknown = [g for g in chosen if g not in GROUPS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"groups are {', '.join(GROUPS)}; got {value!r}")
    return chosen


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the options of ``saddlepoint bench`` (``--full``, ``--json``, ``--threads``,
    ``--only``) to ``parser``, the command's subparser."""
    parser.add_argument(
        "--full",
        action="store_true",
        help="the full sizes (2048³ GEMM, 100M floats, 60,000 samples in each epoch): minutes",
    )
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the record and every row as JSON"
    )
    parser.add_argument(
        "--threads",
        type=_positive,
        metavar="N",
        help="threads for saddlepoint, NumPy's BLAS and PyTorch (default: their own)",
    )
    parser.add_argument(
        "--only",
        type=_groups,
        default=GROUPS,
        metavar="GROUP[,GROUP]",
        help=f"run only these groups ({', '.join(GROUPS)}; default: all)",
    )
    parser.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)  # tiny sizes, for the tests


def _group(group: str, sizes: Sizes, torch: Any, limits: dict[str, float | None]) -> list[Row]:
    """The rows of one group; the gemm and memory groups set the limits the later ones share."""
    peak, bandwidth = limits["gemm_peak_flops"], limits["bandwidth_bytes_per_second"]
    if group == "gemm":
        rows, limits["gemm_peak_flops"] = kernels.gemm(sizes, torch)
        return rows
    if group == "memory":
        rows, limits["bandwidth_bytes_per_second"] = kernels.memory(sizes, torch)
        return rows
    if group == "kernels":
        return kernels.dense(sizes, torch, peak) + kernels.softmax_cross_entropy(sizes, torch)
    if group == "optim":
        return kernels.optimizers(sizes, torch, bandwidth)
    if group == "norm":
        return kernels.batch_norm(sizes, torch)
    if group == "cnn":
        return cnn.cnn(sizes, torch, peak)
    return epoch.epochs(sizes, torch, peak)


def run(args: argparse.Namespace) -> int:
    """Runs the benchmark groups ``args.only`` at the sizes the options chose, prints the table
    to stdout (progress to stderr), writes ``args.json`` when given, and returns the exit
    status 0."""
    start = time.perf_counter()
    sizes, mode = (QUICK, "quick") if args.quick else (FULL, "full") if args.full else (SHORT, "short")
    torch: Any = machine.optional("torch")
    limiter = threadpool_limits(args.threads, user_api="blas") if args.threads else None
    if args.threads:
        set_num_threads(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    try:
        record = machine.record(get_num_threads())
        rows: list[Row] = []
        limits: dict[str, float | None] = {"gemm_peak_flops": None, "bandwidth_bytes_per_second": None}
        group_seconds: dict[str, float] = {}
        for group in GROUPS[1:]:  # the machine's record is always taken
            if group not in args.only:
                continue
            print(f"bench: {group}...", file=sys.stderr, flush=True)
            begin = time.perf_counter()
            rows += _group(group, sizes, torch, limits)
            group_seconds[group] = time.perf_counter() - begin
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
    wall = time.perf_counter() - start
    print(report.text(record, rows, wall))
    if args.json is not None:
        doc = report.document(record, limits, rows, mode, wall)
        doc["group_seconds"] = group_seconds
        report.write_json(args.json, doc)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
