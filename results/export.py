"""Export the genotype of a ranked architecture as a genotype JSON file (space format)."""

from __future__ import annotations

import os
from pathlib import Path

from results.ranking import pick_rank
from results.run import load_run
from space import save


def export_genotype(run: str | os.PathLike[str], out: str | os.PathLike[str], rank: int = 1) -> Path:
    """Write the genotype of rank `rank` (1 = best) of RUN to `out`, atomically.

    `space.load(out)` returns a genotype equal to the stored one, with the same hash.

    Raises:
        RecordError: missing or damaged run.
        NoResultsError: empty run, no 'ok' trial, or rank out of range.
        space.GenotypeError: the stored genotype_json is not valid.
    """
    loaded = load_run(run)
    ranked = pick_rank(loaded.records, rank)
    best = ranked.best
    name = f"{loaded.label} rank {rank}: reward {best.reward:.4f}, trial {best.trial_id}, step {best.step}"
    return save(best.genotype(), out, name=name)
