"""Figures: learning curves, the Hessian spectrum, loss landscapes, optimizer paths on an error
surface and the batch-size study, and PNG files of them for the commands and the examples.

matplotlib is an optional extra (``pip install 'saddlepoint[plot]'``): this module imports it only
inside its functions, so the package works without it. Each ``plot_*`` function draws on the
``ax`` it is given (or a new figure's) with a title and labelled axes, and returns the axes.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping

import numpy as np

MISSING_MATPLOTLIB = "plots skipped: matplotlib is not installed (pip install 'saddlepoint[plot]')"
"""What the commands print (one line, on stderr) when they skip their plots."""

DPI = 100
"""Resolution of every saved PNG, in dots per inch: small files that still read well on a web page."""


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


def _axes(ax):
    """``ax``, or the axes of a new figure (imports matplotlib, which must be installed)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure().gca()


def _series(history) -> dict:
    """A run's per-epoch values as ``{name: list}`` from a :class:`~saddlepoint.History` or a mapping."""
    # A History keeps its lists in .values (a plain dict's .values is a method).
    values = history if isinstance(history, Mapping) else getattr(history, "values", None)
    if not isinstance(values, Mapping):
        raise TypeError(
            f"history must be a History or a mapping of names to lists, got {type(history).__name__}"
        )
    return {k: list(v) for k, v in values.items() if k != "epoch"}


def plot_learning_curves(
    history, ax=None, *, keys=None, label: str = "", title: str = "learning curves", log: bool = False
):
    """Draws per-epoch values (by default the training and validation loss) against the epoch.

    Parameters
    ----------
    history : History or mapping
        A :class:`~saddlepoint.History` (``Trainer.fit``'s result) or ``{name: [value per epoch]}``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure's when None. Call again on the same ``ax`` with another
        ``label`` to compare runs.
    keys : sequence of str, optional
        The values to draw; by default ``"loss"`` and ``"val_loss"`` where present.
    label : str
        Put before each key in the legend (the run's name).
    title : str
    log : bool
        A logarithmic loss axis.

    Returns
    -------
    matplotlib Axes
    """
    series = _series(history)
    keys = [k for k in ("loss", "val_loss") if k in series] if keys is None else list(keys)
    missing = [k for k in keys if k not in series]
    if missing or not keys:
        raise ValueError(f"keys must name values the history holds ({sorted(series)}), got {keys}")
    ax = _axes(ax)
    for key in keys:
        values = series[key]
        style = "--" if key.startswith("val_") else "-"
        ax.plot(range(1, len(values) + 1), values, style, label=f"{label} {key}".strip())
    ax.set(xlabel="epoch", ylabel=keys[0] if len(keys) == 1 else "loss", title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return ax


def _wrapped(title: str, width: int = 60) -> str:
    """A long title on several lines, so that it fits over one panel."""
    return "\n".join(textwrap.wrap(title, width)) or title


def _broadened(values: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """The density of ``values`` with each one spread into a Gaussian of width ``sigma``."""
    z = (grid[:, None] - values[None, :]) / sigma
    return np.exp(-0.5 * z**2).sum(axis=1) / (len(values) * sigma * math.sqrt(2 * math.pi))


def plot_hessian_spectrum(spectrum, ax=None, *, bins: int = 80, title: str | None = None):
    """Draws the Hessian's eigenvalues: a histogram (counts, log scale) with the smoothed density
    over it, or the stochastic-Lanczos density when only that is known.

    Parameters
    ----------
    spectrum : array_like, CriticalPoint or SpectralDensity
        Eigenvalues (1-D); a :class:`~saddlepoint.diagnose.CriticalPoint` (its eigenvalues when it
        has all of them, ``method="full"``, else its SLQ density); or a
        :class:`~saddlepoint.diagnose.SpectralDensity`.
    ax : matplotlib Axes, optional
    bins : int
        Histogram bins.
    title : str, optional
        By default what the point is and its minimum ratio (for a CriticalPoint).

    Returns
    -------
    matplotlib Axes
    """
    if title is None and hasattr(spectrum, "headline"):
        title = f"{spectrum.headline()}; minimum ratio {spectrum.minimum_ratio:.3f}"
    if getattr(spectrum, "method", "full") != "full":
        if spectrum.density is None:
            raise ValueError("spectrum is a CriticalPoint with neither all eigenvalues nor a density")
        spectrum = spectrum.density
    if hasattr(spectrum, "grid") and hasattr(spectrum, "density"):  # SpectralDensity
        ax = _axes(ax)
        ax.semilogy(spectrum.grid, np.maximum(spectrum.density, 1e-12), label="density (SLQ)")
        ax.set(xlabel="Hessian eigenvalue", ylabel="density (per unit eigenvalue)")
        ax.set_title(_wrapped(title or "Hessian spectral density (SLQ)"), fontsize="medium")
        ax.legend(fontsize="small")
        return ax
    values = np.asarray(getattr(spectrum, "eigenvalues", spectrum), dtype=np.float64).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"spectrum must hold finite eigenvalues, got {values.size} values")
    ax = _axes(ax)
    counts, edges, _ = ax.hist(values, bins=bins, log=True, alpha=0.6, label="eigenvalues")
    width = float(edges[-1] - edges[0]) or 1.0
    grid = np.linspace(edges[0] - 0.02 * width, edges[-1] + 0.02 * width, 400)
    # The density in counts per bin, so that it sits on the histogram.
    bin_width = float(edges[1] - edges[0]) or 1.0
    smooth = _broadened(values, grid, max(0.02 * width, bin_width)) * values.size * bin_width
    ax.plot(grid, smooth, color="C1", label="smoothed density")
    ax.set_ylim(bottom=0.5)
    ax.set(xlabel="Hessian eigenvalue", ylabel="count (log scale)")
    ax.set_title(_wrapped(title or f"Hessian spectrum ({values.size} eigenvalues)"), fontsize="medium")
    ax.axvline(0, color="gray", linewidth=0.5)
    ax.legend(fontsize="small")
    return ax


def plot_landscape_1d(landscape, ax=None, *, title: str | None = None):
    """Draws a :class:`~saddlepoint.diagnose.Landscape1D` (the loss along a line) with its own
    ``plot``; ``title`` replaces the default one."""
    ax = landscape.plot(_axes(ax))
    if title is not None:
        ax.set_title(title)
    return ax


def plot_landscape_2d(landscape, ax=None, *, levels: int = 30, title: str | None = None):
    """Draws a :class:`~saddlepoint.diagnose.Landscape2D` (contours of the log loss around a
    point) with its own ``plot``; ``title`` replaces the default one."""
    ax = landscape.plot(_axes(ax), levels=levels)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_trajectories(
    surface_fn,
    paths,
    ax=None,
    *,
    xlim=None,
    ylim=None,
    minimum=None,
    levels: int = 25,
    log: bool = True,
    labels=("w1", "w2"),
    title: str = "optimizer paths on the error surface",
    resolution: int = 200,
):
    """Draws contours of a two-parameter error surface with optimizer paths on it.

    Parameters
    ----------
    surface_fn : callable
        ``surface_fn(W1, W2) -> L``, elementwise on arrays of equal shape (the loss at each point).
    paths : mapping of str to array_like of shape (steps, 2)
        Each optimizer's parameter values, one row per step, starting point first.
    ax : matplotlib Axes, optional
    xlim, ylim : (float, float), optional
        The window; by default the paths' extent with a margin.
    minimum : (float, float), optional
        Marked with a star.
    levels : int
        Contour levels.
    log : bool
        Contours of log10 of the loss (which must then be positive), for surfaces with a wide range.
    labels : (str, str)
        Names of the two parameters, for the axes.
    title : str
    resolution : int
        Grid points along each axis.

    Returns
    -------
    matplotlib Axes
    """
    if not isinstance(paths, Mapping) or not paths:
        raise ValueError(
            f"paths must be a non-empty mapping of names to (steps, 2) arrays, got {paths!r:.80}"
        )
    arrays = {}
    for name, path in paths.items():
        path = np.asarray(path, dtype=np.float64)
        if path.ndim != 2 or path.shape[1] != 2 or len(path) == 0:
            raise ValueError(f"paths[{name!r}] must have shape (steps, 2), got {path.shape}")
        arrays[name] = path
    stacked = np.concatenate(list(arrays.values()))
    if minimum is not None:
        stacked = np.vstack([stacked, np.asarray(minimum, dtype=np.float64)[None, :]])
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    pad = 0.1 * np.maximum(high - low, 1e-3)
    xlim = (low[0] - pad[0], high[0] + pad[0]) if xlim is None else xlim
    ylim = (low[1] - pad[1], high[1] + pad[1]) if ylim is None else ylim
    (x0, x1), (y0, y1) = xlim, ylim
    W1, W2 = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    L = np.asarray(surface_fn(W1, W2), dtype=np.float64)
    ax = _axes(ax)
    values = np.log10(np.maximum(L, 1e-12)) if log else L
    contour = ax.contour(W1, W2, values, levels=levels, cmap="viridis", linewidths=0.8)
    ax.figure.colorbar(contour, ax=ax, label="log10 loss" if log else "loss")
    for i, (name, path) in enumerate(arrays.items()):
        ax.plot(path[:, 0], path[:, 1], ".-", color=f"C{i}", markersize=2.5, linewidth=1.2, label=name)
        ax.plot(path[-1, 0], path[-1, 1], "o", color=f"C{i}", markersize=5)
    first = next(iter(arrays.values()))[0]
    ax.plot(first[0], first[1], "ks", markersize=6, label="start")
    if minimum is not None:
        ax.plot(minimum[0], minimum[1], "r*", markersize=12, label="minimum")
    ax.set(xlim=xlim, ylim=ylim, xlabel=labels[0], ylabel=labels[1], title=title)
    ax.legend(fontsize="small")
    return ax


#: The panels of :func:`plot_batch_size_study`: (row key, scale, y label, title).
_STUDY_PANELS = (
    ("seconds_per_epoch", 1.0, "seconds per epoch", "time per epoch"),
    ("seconds_per_update", 1e3, "milliseconds per update", "time per update"),
    ("metric", 1.0, "", "final {metric}"),
    ("top_eigenvalue", 1.0, "top Hessian eigenvalue", "sharpness of the minimum reached"),
)


def plot_batch_size_study(study, ax=None):
    """Draws a :class:`~saddlepoint.diagnose.BatchSizeStudy` against the batch size (log scale) in
    four panels: time per epoch, time per update, the final training and validation metric, and
    the top Hessian eigenvalue (sharpness).

    Parameters
    ----------
    study : BatchSizeStudy
    ax : sequence of 4 matplotlib Axes, optional
        The panels; a new 2 x 2 figure when None (``save_figure(path, draw, nrows=2, ncols=2)``
        hands ``draw`` such a list).

    Returns
    -------
    list of matplotlib Axes
    """
    rows = getattr(study, "rows", None)
    if not rows:
        raise ValueError("study must be a BatchSizeStudy with at least one row")
    if ax is None:
        import matplotlib.pyplot as plt

        fig, grid = plt.subplots(2, 2, figsize=(10, 7))
        axes = list(grid.ravel())
    else:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != len(_STUDY_PANELS):
            raise ValueError(f"ax must be None or a sequence of {len(_STUDY_PANELS)} axes, got {len(axes)}")
    sizes = [r["batch_size"] for r in rows]
    for panel, (key, scale, ylabel, title) in zip(axes, _STUDY_PANELS):
        if key == "metric":
            for split, style in (("train", "o-"), ("val", "s--")):
                panel.plot(
                    sizes, [r[f"{split}_metric"] for r in rows], style, label=f"{split} {study.metric}"
                )
            panel.legend(fontsize="small")
            ylabel = study.metric
        else:
            panel.plot(sizes, [scale * r[key] for r in rows], "o-")
        panel.set_xscale("log", base=2)
        panel.set_xticks(sizes, [str(size) for size in sizes])  # the sizes studied, not powers of 2
        panel.minorticks_off()
        panel.set(xlabel="batch size", ylabel=ylabel, title=title.format(metric=study.metric))
    return axes
