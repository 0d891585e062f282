"""PNG files for the commands' run and report folders, with matplotlib as an optional extra."""

from __future__ import annotations

#: What the commands print (one line, on stderr) when they skip their plots.
MISSING_MATPLOTLIB = "plots skipped: matplotlib is not installed (pip install 'saddlepoint[plot]')"

#: Resolution of every saved PNG: small files that still read well on a web page.
DPI = 100


def save_figure(path, draw, nrows: int = 1, ncols: int = 1, figsize=None) -> bool:
    """Draws a grid of ``nrows`` x ``ncols`` panels and saves it as a PNG at ``path`` with
    matplotlib's file-only backend.

    Parameters
    ----------
    path : str or os.PathLike
        Where the PNG goes.
    draw : callable
        Called once with the panel: one ``Axes`` for a 1 x 1 grid, otherwise a flat list of
        ``nrows * ncols`` axes in row-major order.
    nrows, ncols : int
        The grid, each at least 1.
    figsize : (float, float), optional
        Inches; by default 6.4 x 4.4 per panel.

    Returns
    -------
    bool
        False, writing nothing, when matplotlib is not installed (callers then print
        :data:`MISSING_MATPLOTLIB`).
    """
    if not isinstance(nrows, int) or not isinstance(ncols, int) or nrows < 1 or ncols < 1:
        raise ValueError(f"nrows and ncols must be positive integers, got {nrows!r} and {ncols!r}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if figsize is None:
        figsize = (6.4 * ncols, 4.4 * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    try:
        panels = list(axes.ravel())
        draw(panels[0] if len(panels) == 1 else panels)
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return True


def save_plot(path, draw, figsize=(6.4, 4.4)) -> bool:
    """Calls ``draw(ax)`` on a new figure and saves it as a PNG at ``path`` with matplotlib's
    file-only backend. Returns False, writing nothing, when matplotlib is not installed (the
    commands then print :data:`MISSING_MATPLOTLIB`)."""
    return save_figure(path, draw, figsize=figsize)
