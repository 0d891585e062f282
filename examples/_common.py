"""What every example shares: quick mode, where figures go, FINDING lines, saving a figure.

An example runs as ``python examples/NN_name.py [--quick]``. Quick mode (the flag, or the
environment variable ``SADDLEPOINT_EXAMPLES_QUICK=1``) uses small settings so that CI can run every
example in seconds; full mode makes the README's pictures. Figures go to
``SADDLEPOINT_EXAMPLES_OUT`` when it is set, else to ``examples/figures``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from saddlepoint import plot

QUICK_ENV = "SADDLEPOINT_EXAMPLES_QUICK"
OUT_ENV = "SADDLEPOINT_EXAMPLES_OUT"
FINDING_PREFIX = "FINDING: "


def quick() -> bool:
    """True when the example should run on small settings (``--quick`` or the environment variable)."""
    return os.environ.get(QUICK_ENV, "") == "1" or "--quick" in sys.argv[1:]


def figure_dir() -> Path:
    """The folder the figures go to, created when missing."""
    folder = Path(os.environ.get(OUT_ENV) or Path(__file__).resolve().parent / "figures")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def finding(text: str) -> None:
    """Prints one finding; the tests read these lines, so keep the numbers in them."""
    print(f"{FINDING_PREFIX}{text}", flush=True)


def save_figure(name: str, draw, nrows: int = 1, ncols: int = 1, figsize=None) -> Path | None:
    """Saves ``draw``'s figure as ``<figure_dir>/<name>.png`` through :func:`saddlepoint.plot.save_figure`
    (``draw`` gets one axes, or a flat list of them for a grid). Without matplotlib it prints a
    notice and returns None."""
    path = figure_dir() / f"{name}.png"
    if not plot.save_figure(path, draw, nrows=nrows, ncols=ncols, figsize=figsize):
        print(f"figure {name}.png not saved: {plot.MISSING_MATPLOTLIB}", flush=True)
        return None
    print(f"figure: {path}", flush=True)
    return path
