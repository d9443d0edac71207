"""Diagram of a genotype's cell graph, in the spirit of the paper's Figures 7-8.

Levels are rows (coarsest at the top), the inputs P_min..P_max form the first column and
every cell its own column in build order. Cells show their op (`+` sum, `GP` global-
pooling attention); output cells are filled and labelled; solid arrows are the two
inputs (for attention the coarse input is drawn thicker), dashed arrows the unconnected
features added to an output cell.
"""

from __future__ import annotations

import os
from pathlib import Path

from space.expansion import expand
from space.genotype import Genotype

_OP_LABEL = {"sum": "+", "attention": "GP"}


def draw(genotype: Genotype, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Write the diagram to `path` (.png or .svg) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = expand(genotype)
    n_in = genotype.num_levels
    levels = genotype.pool_levels()
    xy = [(0.0, float(lv)) for lv in genotype.levels] + [(k + 1.0, float(n.level)) for k, n in enumerate(nodes)]

    fig, ax = plt.subplots(figsize=(1.3 * (len(nodes) + 2), 0.9 * (genotype.num_levels + 1.5)))
    for k, n in enumerate(nodes):
        dst = xy[n_in + k]
        for src, width in ((n.first, 2.2 if n.op == "attention" else 1.2), (n.second, 1.2)):
            _arrow(ax, xy[src], dst, "-", width)
        for e in n.extras:
            _arrow(ax, xy[e], dst, "--", 1.0)
    for idx, (x, y) in enumerate(xy):
        if idx < n_in:
            face, label, edge = "#dddddd", f"P{levels[idx]}", "#555555"
        else:
            n = nodes[idx - n_in]
            face = "#f4a259" if n.is_output else "#8ecae6"
            label, edge = _OP_LABEL[n.op], "#222222"
        ax.scatter([x], [y], s=900, c=face, edgecolors=edge, zorder=3, linewidths=1.5)
        ax.text(x, y, label, ha="center", va="center", fontsize=9, zorder=4, fontweight="bold")
        if idx >= n_in and nodes[idx - n_in].is_output:
            ax.text(x, y - 0.38, f"out P{levels[idx]}", ha="center", va="top", fontsize=8, color="#9c4a00")
    ax.set_yticks(list(genotype.levels), [f"level {lv}\n(stride {2**lv})" for lv in genotype.levels])
    ax.set_xticks(range(len(xy) - n_in + 1), ["inputs"] + [f"cell {k}" for k in range(len(nodes))])
    ax.set_ylim(genotype.min_level - 0.8, genotype.max_level + 0.6)
    ax.set_xlim(-0.6, len(nodes) + 0.6)
    ax.grid(axis="y", alpha=0.2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or f"genotype {genotype.hash()}", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _arrow(ax: object, src: tuple[float, float], dst: tuple[float, float], style: str, width: float) -> None:
    # Curve long edges so that edges sharing a row stay distinguishable.
    rad = 0.25 if abs(dst[0] - src[0]) > 1 else 0.0
    ax.annotate(  # type: ignore[attr-defined]
        "",
        xy=dst,
        xytext=src,
        arrowprops={
            "arrowstyle": "-|>",
            "linestyle": style,
            "lw": width,
            "color": "#444444",
            "shrinkA": 14,
            "shrinkB": 14,
            "connectionstyle": f"arc3,rad={rad}",
        },
        zorder=2,
    )
