"""PNG files for the commands' run and report folders, with matplotlib as an optional extra."""

from __future__ import annotations

#: What the commands print (one line, on stderr) when they skip their plots.
MISSING_MATPLOTLIB = "plots skipped: matplotlib is not installed (pip install 'saddlepoint[plot]')"
"""What the commands print (one line, on stderr) when they skip their plots."""


def save_plot(path, draw, figsize=(6.4, 4.4)) -> bool:
    """Calls ``draw(ax)`` on a new figure and saves it as a PNG at ``path`` with matplotlib's
    file-only backend. Returns False, writing nothing, when matplotlib is not installed (the
    commands then print :data:`MISSING_MATPLOTLIB`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=figsize)
    try:
        draw(ax)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return True
