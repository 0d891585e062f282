"""The report folder of ``saddlepoint diagnose``: report.md, report.json and, when matplotlib is
installed, learning_curves.png, hessian_spectrum.png, landscape.png and batch_sizes.png."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from ..plot import plot_batch_size_study, plot_hessian_spectrum, plot_landscape_2d, save_figure, save_plot


def write_report(
    out: Path,
    title: str,
    guidance,
    critical,
    escape=None,
    landscape=None,
    config: dict | None = None,
    batch_sizes=None,
) -> list[str]:
    """Writes the report files into ``out``; returns the names of the files written.
    ``batch_sizes`` is a :class:`~saddlepoint.diagnose.BatchSizeStudy` to add, or None."""
    out.mkdir(parents=True, exist_ok=True)
    plots = _write_plots(out, guidance, critical, landscape, batch_sizes)
    report = {"config": config or {}, "guidance": guidance.to_dict(), "critical_point": critical.to_dict()}
    if escape is not None:
        report["escape"] = escape.to_dict()
    if landscape is not None:
        report["landscape"] = {k: v for k, v in landscape.to_dict().items() if k != "losses"}
    if batch_sizes is not None:
        report["batch_sizes"] = batch_sizes.to_dict()
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    lines = [
        f"# {title}",
        "",
        f"**Verdict: {guidance.verdict}**, because {guidance.reason}.",
        "",
        f"A loss above {guidance.threshold:g} × the constant-prediction baseline "
        f"({guidance.baseline_loss:.4g}) counts as large.",
        "",
        guidance.table(),
        "",
    ]
    if guidance.shift is not None:
        lines += [f"Training vs test features: {guidance.shift}.", ""]
    lines += ["## What to do", ""] + [f"- {r}" for r in guidance.remedies] + [""]
    lines += ["## Where training ended (the trained model's Hessian)", "", "```", str(critical), "```", ""]
    if escape is not None:
        lines += [f"Escape along the negative-curvature direction: {escape}.", ""]
    if landscape is not None and not landscape.complete:
        lines += [f"The loss landscape is incomplete: {landscape}.", ""]
    if batch_sizes is not None:
        lines += ["## Small vs large batch", "", "```", str(batch_sizes), "```", ""]
    for name, caption in (
        ("learning_curves.png", "Learning curves"),
        ("hessian_spectrum.png", "Hessian spectrum"),
        ("landscape.png", "Loss landscape around the trained model"),
        ("batch_sizes.png", "Small vs large batch"),
    ):
        if name in plots:
            lines += [f"![{caption}]({name})", ""]
    (out / "report.md").write_text("\n".join(lines))
    return ["report.md", "report.json", *plots]


def _write_plots(out: Path, guidance, critical, landscape, batch_sizes) -> list[str]:

    plots = {"learning_curves.png": guidance.plot_learning_curves}
    if critical.method == "full" or critical.density is not None:
        plots["hessian_spectrum.png"] = partial(plot_hessian_spectrum, critical)
    if landscape is not None:
        plots["landscape.png"] = partial(plot_landscape_2d, landscape)
    written = [name for name, draw in plots.items() if save_plot(out / name, draw)]
    if batch_sizes is not None and batch_sizes.rows:
        draw = partial(plot_batch_size_study, batch_sizes)
        if save_figure(out / "batch_sizes.png", draw, nrows=2, ncols=2, figsize=(10, 7)):
            written.append("batch_sizes.png")
    return written
