"""One driver-side W&B run per search: per-trial curves, a live top-k table, the best
genotype as an artifact. Offline by default (no key, no network): `wandb sync DIR` later.

WANDB_MODE must be set in the environment before `ray.init` (docs/ecosystem.md): `configure_env`
does it. The run object stays in the driver: it is never part of anything Tune pickles.
The run id is kept in the record's meta, so a resumed search appends to the same run.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Any

from controller.strategy import PLOTTED_STATS
from proxy_task.evaluator import AP_KEYS
from results import TrialRecord, TrialStore

MODES = ("offline", "online", "disabled")


def configure_env(mode: str) -> None:
    """Export WANDB_MODE (and silence the console) for the driver and the Ray workers."""
    if mode not in MODES:
        raise ValueError(f"wandb.mode={mode!r}: expected one of {list(MODES)}")
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_CONSOLE", "off")


class WandbLogger:
    """A listener for `ControllerSearcher` that feeds one W&B run."""

    def __init__(
        self,
        store: TrialStore,
        run_dir: Path,
        name: str,
        config: dict[str, Any],
        project: str = "nasfpn",
        entity: str | None = None,
        top_k: int = 10,
        table_every: int = 10,
    ) -> None:
        import wandb

        self.wandb = wandb
        self.store, self.run_dir, self.top_k, self.table_every = store, run_dir, top_k, table_every
        run_id = store.get_meta("wandb_run_id")
        if run_id is None:
            run_id = f"{name}-{uuid.uuid4().hex[:8]}"
            store.set_meta("wandb_run_id", run_id)
        self.run = wandb.init(
            project=project,
            entity=entity,
            name=name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            config=config,
            settings=wandb.Settings(console="off", x_disable_stats=True),
        )
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")
        self.n = store.count()
        self.best = max((r.reward for r in store.records() if r.reward is not None), default=None)
        self.hashes = set(store.unique_hashes())

    def __call__(self, record: TrialRecord, stats: dict[str, Any]) -> None:
        self.n += 1
        self.hashes.add(record.genotype_hash)
        if record.reward is not None and (self.best is None or record.reward > self.best):
            self.best = record.reward
        row: dict[str, Any] = {
            "step": record.step,
            "samples": self.n,
            "unique_architectures": len(self.hashes),
            "best_reward": self.best,
            "trial/cache_hit": int(record.cache_hit),
            "trial/failed": int(not record.rewarded),
        }
        if record.reward is not None:
            row["trial/reward"] = record.reward
        for k in AP_KEYS:
            if isinstance(record.metrics.get(k), (int, float)):
                row[f"trial/{k}"] = record.metrics[k]
        for key in PLOTTED_STATS:  # W&B names: controller/<key>
            if isinstance(stats.get(key), (int, float)):
                row[f"controller/{key}"] = stats[key]
        self.run.log(row)
        if self.n % self.table_every == 0:
            self.log_table()

    def log_table(self) -> None:
        """Refresh the top-k table (rank, reward, AP metrics, cost, genotype, diagram)."""
        from space import dumps
        from space.diagram import draw

        cols = ["rank", "reward", "ap", "ap50", "ap75", "params", "macs", "hash", "step", "genotype", "diagram"]
        table = self.wandb.Table(columns=cols)
        diagrams = self.run_dir / "diagrams"
        for rank, r in enumerate(self.store.top(self.top_k), start=1):
            genotype = r.genotype()  # written again below: canonical even from an older record
            png = diagrams / f"{r.genotype_hash}.png"
            if not png.exists():
                draw(genotype, png, title=f"rank {rank}: reward {r.reward:.4f}")
            m = r.metrics
            table.add_data(
                rank, r.reward, m.get("ap"), m.get("ap50"), m.get("ap75"), r.params, r.macs,
                r.genotype_hash, r.step, dumps(genotype), self.wandb.Image(str(png)),
            )  # fmt: skip
        self.run.log({"top_architectures": table})

    def finish(self, best_genotype: Path | None) -> str:
        """Final table and the best genotype as an artifact; returns the run's directory."""
        if self.store.top(1):
            self.log_table()
        if best_genotype is not None and best_genotype.exists():
            artifact = self.wandb.Artifact("best-genotype", type="genotype")
            artifact.add_file(str(best_genotype))
            self.run.log_artifact(artifact)
        run_dir = str(Path(self.run.dir).parent)
        self.run.finish()
        return run_dir

    def close(self) -> None:
        """End the run without the final table (the search stopped on a failed write)."""
        with contextlib.suppress(Exception):  # the run ends anyway; nothing of the record depends on it
            self.run.finish()
