"""A Markdown report of one run: report.md beside its figures and architecture diagrams.

OUT/report.md        summary, trial counts by status, run config, top-k table
OUT/progress.png     results.plots.plot_progress
OUT/rankNN_HASH.*    one diagram per top architecture (space.diagram.draw)
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from results.plots import plot_progress
from results.ranking import TABLE_HEADER, RankedArchitecture, rank_architectures, table_row
from results.record import STATUSES
from results.run import Run, load_run
from space.atomic import write_text_atomic

PROGRESS_FIGURE = "progress.png"


def _diagram_function() -> tuple[Callable[..., Path] | None, str]:
    """(space.diagram.draw, "") or (None, why it cannot be imported)."""
    try:
        from space.diagram import draw
    except ImportError as e:  # not installed yet, or a missing optional drawing dependency
        return None, str(e)
    return draw, ""


def _md_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _summary(run: Run) -> list[str]:
    records = run.records
    counts = Counter(r.status for r in records)
    steps = [r.step for r in records]
    hours = sum(r.duration_s for r in records) / 3600
    lines = [
        f"- Record: `{run.path}`",
        f"- Strategy: {run.label}",
        f"- Trials: {len(records)} (" + ", ".join(f"{s} {counts[s]}" for s in STATUSES if counts[s]) + ")",
        f"- Unique architectures: {len({r.genotype_hash for r in records})}",
        f"- Steps: {min(steps)}..{max(steps)}; trial time {hours:.2f} h",
    ]
    errors = Counter(_one_line(r.error) for r in records if r.error)
    if errors:
        lines += ["", "Most frequent errors:", ""]
        lines += [f"- {n} x `{msg}`" for msg, n in errors.most_common(5)]
    return lines


def _diagrams(ranked: list[RankedArchitecture], out_dir: Path) -> list[str]:
    draw, why = _diagram_function()
    if draw is None:
        return [f"Diagrams unavailable: cannot import `space.diagram.draw` ({_one_line(why)})."]
    lines: list[str] = []
    for a in ranked:
        r = a.best
        title = f"rank {a.rank}: reward {r.reward:.4f} ({r.genotype_hash})"
        path = Path(draw(r.genotype(), out_dir / f"rank{a.rank:02d}_{r.genotype_hash}.png", title=title))
        rel = os.path.relpath(path, out_dir)
        lines += [f"### Rank {a.rank}: reward {r.reward:.4f}, `{r.genotype_hash}`", ""]
        lines += [f"Trial `{r.trial_id}` at step {r.step} on `{r.node or '?'}`.", "", f"![rank {a.rank}]({rel})", ""]
    return lines


def write_report(run: str | os.PathLike[str], out_dir: str | os.PathLike[str], k: int = 10, window: int = 50) -> Path:
    """Write OUT/report.md with the progress figure, the top-k table and top-k diagrams.

    Returns:
        The path of report.md.
    Raises:
        RecordError: missing or damaged run.
        NoResultsError: the run holds no trials.
    """
    loaded = load_run(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_progress([loaded], out / PROGRESS_FIGURE, window=window)
    ranked = rank_architectures(loaded.records, k)
    lines = [f"# NAS-FPN search report: {loaded.name}", ""] + _summary(loaded)
    lines += ["", "## Progress", "", f"![search progress]({PROGRESS_FIGURE})", ""]
    lines += [f"## Top {k} architectures", ""]
    if ranked:
        lines += _md_table(TABLE_HEADER, [table_row(a) for a in ranked])
        lines += ["", "Params in millions (M), multiply-adds in billions (G). Export one with", ""]
        lines += [f"    python -m results export {loaded.path} --rank N --out best.json", ""]
        lines += ["## Top architectures", ""] + _diagrams(ranked, out)
    else:
        lines += ["No successful ('ok') trial yet.", ""]
    if loaded.meta:
        lines += ["## Run configuration", "", "```json", json.dumps(loaded.meta, indent=2, sort_keys=True), "```", ""]
    return write_text_atomic(out / "report.md", "\n".join(lines) + "\n")
