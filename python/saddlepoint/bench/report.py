"""The bench's output: one table of times, ratios and shares of the machine's limits on stdout,
and everything (the machine's record, the limits, the rows) as JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .machine import describe
from .timing import Row


def duration(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _share(r: Row) -> str:
    if r.share is None:
        return f"{r.rate}" if r.rate else ""
    return f"{r.share:.0%} of {r.limit} ({r.rate})"


def table(rows: list[Row]) -> list[str]:
    """One line per row: saddlepoint's time and its share of the machine's limit, then one line
    per competitor with its time and how many times faster saddlepoint is (its time over ours)."""
    width = max([len(r.name) for r in rows] + [3]) + 2
    header = f"{'row':<{width}}{'saddlepoint':>12}  {'against':<14}{'time':>10}{'ratio':>8}  share of limit"
    lines = [header, "-" * len(header)]
    group = None
    for r in rows:
        if group is not None and r.group != group:
            lines.append("")
        group = r.group
        competitors: list[tuple[str, float | None]] = list(r.competitors.items()) or [("", None)]
        for i, (library, seconds) in enumerate(competitors):
            first = i == 0
            ratio = r.ratio(library) if library else None
            lines.append(
                f"{r.name if first else '':<{width}}{duration(r.seconds) if first else '':>12}  {library:<14}"
                f"{duration(seconds) if seconds is not None else '':>10}"
                f"{f'{ratio:.2f}x' if ratio is not None else '':>8}  {_share(r) if first else ''}".rstrip()
            )
    lines.append("")
    lines.append(
        "times: best of the repeats, libraries taking turns; ratio: the other's time over saddlepoint's "
        "(above 1: saddlepoint is faster)"
    )
    lines.append(
        "share of limit: saddlepoint's rate over the best GEMM rate measured here (GEMM peak) or the best "
        "copy rate of a large array (bandwidth); data that fits in cache can pass 100%"
    )
    return lines


def text(machine: dict[str, Any], rows: list[Row], wall: float) -> str:
    lines = describe(machine) + [""] + table(rows)
    if machine["environment"]:
        lines.append(
            "note: " + ", ".join(f"{k}={v}" for k, v in machine["environment"].items()) + " set: numpy's "
            "BLAS runs a slower kernel than this CPU allows, so the GEMM peak and numpy's times are understated"
        )
    lines.append(f"wall time: {wall:.1f} s")
    return "\n".join(lines)


def document(
    machine: dict[str, Any], limits: dict[str, Any], rows: list[Row], mode: str, wall: float
) -> dict:
    """Everything the run measured, JSON-ready."""
    out_rows = []
    for r in rows:
        entry = dataclasses.asdict(r)
        entry["ratios"] = {library: r.ratio(library) for library in r.competitors}
        out_rows.append(entry)
    return {"mode": mode, "machine": machine, "limits": limits, "rows": out_rows, "wall_seconds": wall}


def write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n")
