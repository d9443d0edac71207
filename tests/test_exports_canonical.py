"""Every export writes the canonical genotype (input pairs sorted), so that what is read back
builds the same network under this project's attention rule (at equal levels the lower pool
index is the attention source) and under the official TensorFlow builders' rule (at equal
levels the first listed input is)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from results import TrialRecord, TrialStore
from results.export import export_genotype
from space import Genotype, SearchSpace, dumps, expand, load, loads, make_genotype, save
from space.genotype import Cell, from_controller_string, to_block_specs, to_controller_string
from space.serialization import to_dict

# the paper genotype with its second cell made an attention cell over (n5, P4), both at P4,
# written in the order (5, 1): the two rules pick different attention sources for it
TIE = make_genotype(
    [
        (4, "attention", (1, 3), False),
        (4, "attention", (5, 1), False),
        (3, "sum", (0, 6), True),
        (4, "sum", (6, 7), True),
        (5, "attention", (7, 8), True),
        (7, "attention", (6, 9), True),
        (6, "attention", (9, 10), True),
    ]
)


def _unsorted(seed: int) -> Genotype:
    """A sample of the space with every pair written in a random order, as a controller samples."""
    rng = random.Random(seed)
    g = SearchSpace().sample(rng)
    cells = [Cell(c.level, c.op, c.inputs[::-1] if rng.random() < 0.5 else c.inputs, c.is_output) for c in g.cells]
    return Genotype(tuple(cells), g.min_level, g.max_level)


GENOTYPES = [TIE] + [_unsorted(seed) for seed in range(40)]


def _project(g: Genotype) -> list[tuple]:
    """(level, op, first, second) per cell as this project builds it (attention: first = source)."""
    return [(n.level, n.op, n.first, n.second) for n in expand(g)]


def _official(g: Genotype) -> list[tuple]:
    """The same as tensorflow/models' `NASFPN._build_feature_pyramid` reads the block specs:
    attention takes input_offsets[0] as the source unless input_offsets[1] is at a higher level."""
    levels, out = g.pool_levels(), []
    for c in g.cells:
        a, b = c.inputs
        if c.op == "attention":
            first, second = (a, b) if levels[a] >= levels[b] else (b, a)
        else:
            first, second = min(a, b), max(a, b)
        out.append((c.level, c.op, first, second))
    return out


def _written_as_sampled(g: Genotype) -> str:
    """Genotype JSON with the pairs in the genotype's own order (what exports wrote before)."""
    d = to_dict(g)
    for cell, c in zip(d["cells"], g.cells):
        cell["inputs"] = list(c.inputs)
    return json.dumps(d)


def _assert_same_network(original: Genotype, exported: Genotype) -> None:
    assert all(c.inputs[0] < c.inputs[1] for c in exported.cells)  # written canonical
    assert exported == original.canonical() and exported.hash() == original.hash()
    assert expand(exported) == expand(original)  # this project's builder
    assert _official(exported) == _project(original)  # the official builder


def test_the_two_rules_differ_on_an_unsorted_tie():
    assert _official(TIE) != _project(TIE)  # why exports must not keep the sampled order
    assert _official(TIE.canonical()) == _project(TIE)


@pytest.mark.parametrize(
    "export",
    [
        lambda g, tmp: loads(dumps(g)),
        lambda g, tmp: load(save(g, tmp / "g.json")),
        lambda g, tmp: make_genotype(to_block_specs(g)),
        lambda g, tmp: from_controller_string(to_controller_string(g)),
        lambda g, tmp: TrialRecord.from_genotype(g, trial_id="t", step=0, policy_version=0, reward=0.1).genotype(),
    ],
    ids=["json", "file", "block_specs", "controller_string", "trial_record"],
)
def test_space_exports_round_trip_to_the_same_network(export, tmp_path):
    for g in GENOTYPES:
        _assert_same_network(g, export(g, tmp_path))


def _old_record_store(path: Path) -> TrialStore:
    """A record written before exports were canonical: genotype_json in sampled order."""
    store = TrialStore(path / "trials.sqlite")
    store.set_meta("strategy", "ppo")
    for step, g in enumerate(GENOTYPES[:4]):
        text = _written_as_sampled(g)
        reward = 0.5 - 0.1 * step  # TIE is the best
        store.append(
            TrialRecord(
                trial_id=f"t{step}", step=step, policy_version=0, genotype_json=text, genotype_hash=g.hash(),
                reward=reward, metrics={"ap": reward}, status="ok", strategy="ppo",
            )
        )  # fmt: skip
    return store


def test_best_genotype_export_of_an_old_record_is_canonical(tmp_path):
    _old_record_store(tmp_path / "run").close()
    for rank in (1, 2):
        path = export_genotype(tmp_path / "run", tmp_path / f"best{rank}.json", rank=rank)
        _assert_same_network(GENOTYPES[rank - 1], load(path))


def test_wandb_table_genotypes_are_canonical(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    from search.wandb_logger import WandbLogger

    store = _old_record_store(tmp_path)
    logger = WandbLogger(store, tmp_path, "tie", {}, top_k=2)
    run_dir = Path(logger.finish(None))
    store.close()
    tables = list(run_dir.rglob("top_architectures*.table.json"))
    assert tables, "no top-k table in the offline W&B run"
    table = json.loads(tables[0].read_text())
    column = table["columns"].index("genotype")
    assert [loads(row[column]).hash() for row in table["data"]] == [g.hash() for g in GENOTYPES[:2]]
    for row, g in zip(table["data"], GENOTYPES):
        _assert_same_network(g, loads(row[column]))
