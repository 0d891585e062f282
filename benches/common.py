"""Shared helpers of the benchmarks: timing side by side, and the machine's description — both
from the package's ``saddlepoint bench`` (python/saddlepoint/bench/), which runs these benchmarks
as one command."""

from __future__ import annotations

from saddlepoint.bench.machine import describe, optional, record
from saddlepoint.bench.timing import interleaved_best

__all__ = ["interleaved_best", "machine_description", "start", "torch_or_none"]


def machine_description() -> str:
    return "\n".join(describe(record()))


def torch_or_none():
    return optional("torch")


def start(threads: int):
    """Prints the machine and thread counts; returns torch (set to ``threads``) or None."""
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(threads)
    print(machine_description())
    return torch
