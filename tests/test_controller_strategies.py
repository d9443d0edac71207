"""Ask/tell protocol, state round trips, evolution and random search."""

import io
import random
from collections import Counter

import pytest
import torch

import controller
from controller import Sample
from controller.mutation import mutate
from space import SearchSpace

SPACE = SearchSpace()
NAMES = ["ppo", "reinforce", "random", "evolution"]
# small sizes so that updates / selection happen within a few dozen samples
SMALL = {
    "ppo": {"batch_size": 5, "hidden_size": 16},
    "reinforce": {"batch_size": 5, "hidden_size": 16},
    "random": {},
    "evolution": {"population_size": 8, "sample_size": 3},
}


def _reward(sample):
    return float(sample.actions[0] + sample.actions[3] - sample.actions[-3] / 2)


def _drive(strategy, rng, steps, in_flight=4):
    """Ask/tell with `in_flight` outstanding samples told in random order; returns the trace."""
    trace = []
    pending = list(strategy.pending)
    for _ in range(steps):
        while len(pending) < in_flight:
            s = strategy.ask()
            trace.append((s.id, s.actions, s.log_probs, s.version, s.parent))
            pending.append(s)
        s = pending.pop(rng.randrange(len(pending)))
        strategy.tell(s, None if s.id % 11 == 0 else _reward(s))
    return trace


def _untimed(stats):
    return {k: v for k, v in stats.items() if k != "update_seconds"}


@pytest.mark.parametrize("name", NAMES)
def test_every_strategy_samples_only_valid_genotypes(name):
    strategy = controller.build(name, SPACE, seed=0, **SMALL[name])
    trace = _drive(strategy, random.Random(0), 2000 if name in ("random", "evolution") else 600)
    for _, actions, *_ in trace:
        g = SPACE.decode(actions)  # raises on any masked-out action
        SPACE.contains(g)
        assert sorted(c.level for c in g.cells[SPACE.num_intermediate :]) == list(SPACE.levels)
    assert [t[0] for t in trace] == list(range(len(trace)))


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_through_torch_save_continues_exactly(name):
    options = dict(SMALL[name], seed=7, failure_reward=-1.0)
    original = controller.build(name, SPACE, **options)
    rng = random.Random(1)
    _drive(original, rng, 23)  # mid-batch, with 3 samples outstanding
    assert len(original.pending) == 3
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    restored = controller.build(name, SPACE, **dict(options, seed=123))  # seed is overwritten
    restored.load_state_dict(state)
    assert restored.stats() == original.stats()
    assert [s.actions for s in restored.pending] == [s.actions for s in original.pending]
    rng_state = rng.getstate()
    expected = _drive(original, rng, 30)
    rng.setstate(rng_state)
    assert _drive(restored, rng, 30) == expected
    assert _untimed(restored.stats()) == _untimed(original.stats())
    if name in ("ppo", "reinforce"):
        for a, b in zip(original.policy.parameters(), restored.policy.parameters()):
            assert torch.equal(a, b)


def test_state_is_a_snapshot_and_checks_what_it_is_loaded_into():
    ppo = controller.build("ppo", SPACE, **SMALL["ppo"])
    state = ppo.state_dict()
    before = state["policy"]["head_bias"].clone()
    _drive(ppo, random.Random(0), 20)
    assert torch.equal(state["policy"]["head_bias"], before)  # not aliased to live weights
    with pytest.raises(ValueError, match="strategy 'ppo'"):
        controller.build("reinforce", SPACE, **SMALL["reinforce"]).load_state_dict(state)
    with pytest.raises(ValueError, match=r"different options: \['lr'\]"):
        controller.build("ppo", SPACE, **dict(SMALL["ppo"], lr=0.1)).load_state_dict(state)
    with pytest.raises(ValueError, match="different search space"):
        controller.build("ppo", SearchSpace(num_intermediate=1), **SMALL["ppo"]).load_state_dict(state)


@pytest.mark.parametrize("name", ["ppo", "reinforce"])
def test_out_of_order_and_late_tells_are_used(name):
    strategy = controller.build(name, SPACE, seed=0, batch_size=4, hidden_size=16)
    early = [strategy.ask() for _ in range(3)]
    for _ in range(12):  # three updates while `early` is outstanding
        strategy.tell(strategy.ask(), 1.0)
    assert strategy.stats()["policy_version"] == 3
    later = strategy.ask()
    assert later.version == 3 and all(s.version == 0 for s in early)
    for s in reversed(early):
        strategy.tell(s, 2.0)
    strategy.tell(later, 0.5)  # completes the fourth batch: an update with stale samples
    stats = strategy.stats()
    assert stats["policy_version"] == 4 and stats["num_told"] == 16 and stats["num_pending"] == 0
    assert stats["loss"] is not None and stats["entropy"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_bad_tells_raise_clear_errors(name):
    strategy = controller.build(name, SPACE, **SMALL[name])
    other = controller.build(name, SPACE, seed=99, **SMALL[name])
    mine = [strategy.ask(), strategy.ask()]
    theirs = [other.ask(), other.ask()]
    with pytest.raises(ValueError, match="sample 5 is unknown"):
        strategy.tell(Sample(5, mine[0].genotype, mine[0].actions), 1.0)
    with pytest.raises(ValueError, match="not finite"):
        strategy.tell(mine[0], float("nan"))
    assert theirs[1].actions != mine[1].actions
    with pytest.raises(ValueError, match="does not match"):
        strategy.tell(theirs[1], 1.0)
    strategy.tell(mine[0], 1.0)
    with pytest.raises(ValueError, match="sample 0 was already told"):
        strategy.tell(mine[0], 1.0)
    assert strategy.stats()["num_told"] == 1 and strategy.stats()["num_pending"] == 1


def test_failed_trials_get_the_failure_reward():
    evo = controller.build("evolution", SPACE, population_size=4, sample_size=2, failure_reward=-3.0)
    a, b, c = evo.ask(), evo.ask(), evo.ask()
    evo.tell(a, None)
    evo.tell(b, 0.7, failed=True)
    evo.tell(c, 0.25)
    assert [m[2] for m in evo.population] == [-3.0, -3.0, 0.25]
    assert evo.stats()["num_failed"] == 2
    # a policy gradient scores a failure against the baseline but never moves the baseline
    ppo = controller.build("ppo", SPACE, failure_reward=-1.0, normalize_advantage=False)
    ppo.tell(ppo.ask(), None)
    assert ppo.stats()["baseline"] is None  # nothing to compare the first failure with
    ppo.tell(ppo.ask(), 0.5)
    ppo.tell(ppo.ask(), None)
    assert ppo.stats()["baseline"] == 0.5
    assert [b["advantage"] for b in ppo._buffer] == [0.0, -1.5]


def test_build_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown strategy 'bayes'"):
        controller.build("bayes")
    with pytest.raises(TypeError):
        controller.build("ppo", SPACE, learning_rate=0.1)
    assert controller.build("random").space == SearchSpace()


def test_mutations_stay_valid_and_change_the_architecture():
    rng = random.Random(0)
    changed_kinds = Counter()
    for _ in range(2000):
        parent = SPACE.encode(SPACE.sample(rng))
        child = mutate(SPACE, parent, rng)
        g = SPACE.decode(child)  # raises if the repair left an invalid choice
        assert g.canonical() != SPACE.decode(parent).canonical()
        diff = [t for t in range(SPACE.num_steps) if child[t] != parent[t]]
        assert 1 <= len(diff) <= 2  # one change, plus at most one repair (a swap)
        changed_kinds[SPACE.decisions[diff[0]].kind] += 1
    assert set(changed_kinds) == {"input_i", "input_j", "level", "op"}


def test_evolution_is_random_until_full_then_mutates_tournament_winners():
    evo = controller.build("evolution", SPACE, population_size=6, sample_size=3, seed=0)
    first = [evo.ask() for _ in range(10)]  # asked before any tell: all random
    assert all(s.parent is None for s in first)
    for s in first:
        evo.tell(s, _reward(s))
    assert [m[0] for m in evo.population] == [4, 5, 6, 7, 8, 9]  # oldest removed
    children = [evo.ask() for _ in range(20)]
    members = {m[0]: m[1] for m in evo.population}
    for child in children:
        assert child.parent in members
        assert 1 <= sum(a != b for a, b in zip(child.actions, members[child.parent])) <= 2
    # the worst member never wins a tournament of 3 out of 6
    worst = min(evo.population, key=lambda m: m[2])[0]
    assert worst not in {c.parent for c in children}


def test_random_search_is_uniform_over_sorted_pairs_levels_and_orders():
    rs = controller.build("random", SPACE, seed=0)
    n = 6000
    samples = [rs.ask() for _ in range(n)]
    pairs = Counter(s.genotype.cells[0].inputs for s in samples)  # pool of 5: 10 sorted pairs
    assert set(pairs) == {(i, j) for i in range(5) for j in range(i + 1, 5)}
    chi2 = sum((c - n / 10) ** 2 / (n / 10) for c in pairs.values())
    assert chi2 < 27.9  # 9 dof, p = 0.001
    orders = Counter(s.genotype.output_order() for s in samples)  # 120 permutations
    assert len(orders) == 120
    chi2 = sum((c - n / 120) ** 2 / (n / 120) for c in orders.values())
    assert chi2 < 170  # 119 dof, p ~ 0.001
    levels = Counter(s.genotype.cells[1].level for s in samples)
    assert set(levels) == {4, 5, 6, 7} and max(levels.values()) - min(levels.values()) < 0.1 * n / 4


def test_policy_samples_both_orders_of_a_pair():
    ppo = controller.build("ppo", SPACE, seed=0)
    firsts = [ppo.ask().actions[:2] for _ in range(400)]
    assert any(i < j for i, j in firsts) and any(i > j for i, j in firsts)
