"""`python -m results recover`: a damaged record's readable rows go to a new, valid record."""

import random

from results import TrialRecord, TrialStore
from results.__main__ import main
from space import SearchSpace


def test_recover_salvages_every_record_before_a_garbage_tail(tmp_path, capsys):
    db = tmp_path / "run" / "trials.sqlite"
    db.parent.mkdir()
    space, rng = SearchSpace(), random.Random(0)
    with TrialStore(db) as store:
        store.set_meta("strategy", "ppo")
        for k in range(5):
            store.append(
                TrialRecord.from_genotype(space.sample(rng), trial_id=f"t{k}", step=k, policy_version=0, reward=k / 10)
            )
        before = store.records()
    with open(db, "ab") as f:
        f.write(b"\x00garbage" * 50)
    assert main(["top", str(db.parent)]) == 2
    assert "python -m results recover" in capsys.readouterr().err
    out = tmp_path / "recovered.sqlite"
    assert main(["recover", str(db.parent), "--out", str(out)]) == 0
    with TrialStore(out, readonly=True) as store:
        assert [r.to_row()[:-1] for r in store.records()] == [r.to_row()[:-1] for r in before]
        assert store.get_meta("strategy") == "ppo"
    assert main(["recover", str(db.parent), "--out", str(out)]) == 2  # never overwrites
