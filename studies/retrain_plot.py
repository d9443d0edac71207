"""Figure of a retrain study: AP mean ± std over seeds per genotype, each seed a dot."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from results.plots import save_figure


def _colour(name: str) -> str:
    if name.startswith("paper"):
        return "C3"
    if name.startswith("fpn"):
        return "C2"
    if re.fullmatch(r"random-[0-9a-f]{8}", name):
        return "C7"  # uniform samples of the space (named by hash)
    return "C0"  # found by a search (best:RUN or an exported file)


def plot_retrain(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str], title: str = "") -> Path:
    """Horizontal bars (best mean on top) with std error bars and per-seed dots; the label
    carries the pyramid's multiply-adds. Written to a temporary name, then moved in place."""
    if not rows:
        raise ValueError("plot_retrain needs at least one row")
    fig = Figure(figsize=(8, 0.45 * len(rows) + 1.3), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ys = list(range(len(rows)))[::-1]
    for y, r in zip(ys, rows):
        if r["ap_mean"] is not None:  # None: no seed trained (every one failed)
            ax.barh(y, r["ap_mean"], xerr=r["ap_std"], color=_colour(r["name"]), alpha=0.75, capsize=3)
        ax.scatter(r["ap"], [y] * len(r["ap"]), s=10, color="black", zorder=3)
    macs = [f"{r['pyramid_macs'] / 1e6:.1f}M" if r.get("pyramid_macs") else "-" for r in rows]
    ax.set_yticks(ys, [f"{r['name']}  ({m} MACs)" for r, m in zip(rows, macs)], fontsize="small")
    ax.set(xlabel="AP (bar: mean over seeds, whisker: std, dots: seeds)", title=title)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)
