"""The report folder of ``saddlepoint diagnose``: report.md, report.json and, when matplotlib is
installed, learning_curves.png, hessian_spectrum.png and landscape.png."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from ..plot import plot_hessian_spectrum, plot_landscape_2d, save_plot


def write_report(
    out: Path, title: str, guidance, critical, escape=None, landscape=None, config: dict | None = None
) -> list[str]:
    """Writes the report files into ``out``; returns the names of the files written."""
    out.mkdir(parents=True, exist_ok=True)
    plots = _write_plots(out, guidance, critical, landscape)
    report = {"config": config or {}, "guidance": guidance.to_dict(), "critical_point": critical.to_dict()}
    if escape is not None:
        report["escape"] = escape.to_dict()
    if landscape is not None:
        report["landscape"] = {k: v for k, v in landscape.to_dict().items() if k != "losses"}
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
    for name, caption in (
        ("learning_curves.png", "Learning curves"),
        ("hessian_spectrum.png", "Hessian spectrum"),
        ("landscape.png", "Loss landscape around the trained model"),
    ):
        if name in plots:
            lines += [f"![{caption}]({name})", ""]
    (out / "report.md").write_text("\n".join(lines))
    return ["report.md", "report.json", *plots]


def _write_plots(out: Path, guidance, critical, landscape) -> list[str]:

    plots = {"learning_curves.png": guidance.plot_learning_curves}
    if critical.method == "full" or critical.density is not None:
        plots["hessian_spectrum.png"] = partial(plot_hessian_spectrum, critical)
    if landscape is not None:
        plots["landscape.png"] = partial(plot_landscape_2d, landscape)
    return [name for name, draw in plots.items() if save_plot(out / name, draw)]
