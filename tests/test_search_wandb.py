"""The driver's W&B run, read back from the offline run's own files (no network, no key)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import controller
from controller.strategy import PLOTTED_STATS
from results import TrialRecord, TrialStore
from search.wandb_logger import WandbLogger
from space import SearchSpace

_BLOCK, _HEADER = 32768, 7  # the .wandb file: a W&B header, then a LevelDB-style record log


def _history(run_dir: Path) -> list[dict]:
    """Every `run.log` row stored in the offline run's transaction log, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = next(run_dir.glob("run-*.wandb")).read_bytes()
    assert data[:4] == b":W&B"
    rows, pos, parts = [], _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's tail too short for a record header is padding
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        parts += data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(parts)
            parts = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    return rows


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def test_offline_run_holds_the_controller_loss(tmp_path, offline):
    space = SearchSpace()
    strategy = controller.build("ppo", space, seed=0, batch_size=2)
    rng = random.Random(0)
    published = []
    with TrialStore(tmp_path / "trials.sqlite") as store:
        logger = WandbLogger(store, tmp_path, "wb", {"controller": "ppo"}, table_every=1000)
        for step in range(6):
            sample = strategy.ask()
            reward = rng.uniform(0.0, 0.05)
            strategy.tell(sample, reward)
            record = TrialRecord.from_genotype(
                sample.genotype, trial_id=f"t{step}", step=step, policy_version=sample.version, reward=reward
            )
            store.append(record)
            stats = strategy.stats()
            published.append(stats)
            logger(record, stats)
        run_dir = Path(logger.finish(None))
    rows = [r for r in _history(run_dir) if "step" in r and "samples" in r]
    assert [r["step"] for r in rows] == list(range(6))
    # three updates of two samples: the loss of the last update from the second tell on
    losses = [r.get("controller/loss") for r in rows]
    assert losses[0] is None is published[0]["loss"] and None not in losses[1:]
    assert losses[1:] == pytest.approx([s["loss"] for s in published[1:]], rel=1e-12)
    for row, stats in zip(rows, published):
        for key in PLOTTED_STATS:
            if isinstance(stats.get(key), (int, float)):
                assert row[f"controller/{key}"] == pytest.approx(stats[key], rel=1e-12)
    assert rows[-1]["controller/policy_version"] == 3
