"""ControllerSearcher without Ray: suggest/complete, reward cache, in-flight duplicates,
failures, reconcile, and rebuilding a lost controller state from the record."""

import json
import random

import pytest
import torch

import controller
from results import TrialStore
from search.searcher import ControllerSearcher
from search.state import load_state, rebuild, reconcile, save_state
from space import SearchSpace, loads


def _searcher(tmp_path, name="random", **kw):
    strategy = controller.build(name, SearchSpace(), seed=0)
    store = TrialStore(tmp_path / "trials.sqlite")
    return ControllerSearcher(strategy, name, store, tmp_path / "state.pt", **kw), store


def _ok(ap):
    return {"final": True, "status": "ok", "ap": ap, "ap50": 2 * ap, "params": 10, "macs": 20, "node": "n"}


def test_suggest_and_complete_write_the_record(tmp_path):
    s, store = _searcher(tmp_path)
    cfg = s.suggest("t1")
    g = loads(cfg["genotype"])
    assert cfg["hash"] == g.hash() and cfg["step"] == 0
    s.on_trial_complete(trial_id="t1", result=_ok(0.25))
    (r,) = store.records()
    assert (r.trial_id, r.step, r.reward, r.status, r.metrics["ap50"], r.params) == ("t1", 0, 0.25, "ok", 0.5, 10)
    assert s.strategy.stats()["num_told"] == 1 and (tmp_path / "state.pt").exists()


def test_out_of_order_completion_and_failures(tmp_path):
    s, store = _searcher(tmp_path)
    for t in ("a", "b", "c"):
        s.suggest(t)
    s.on_trial_complete(trial_id="c", result=_ok(0.1))
    s.errors["a"] = "RuntimeError: worker died"
    s.on_trial_complete(trial_id="a", result=None, error=True)
    s.on_trial_complete(trial_id="b", result={"final": True, "status": "nonfinite", "error": "loss is nan"})
    by_id = {r.trial_id: r for r in store.records()}
    assert by_id["a"].status == "failed" and by_id["a"].error == "RuntimeError: worker died"
    assert by_id["b"].status == "nonfinite" and by_id["b"].reward is None
    assert s.strategy.stats()["num_failed"] == 2 and s.strategy.stats()["num_pending"] == 0


def test_reward_cache_returns_stored_reward_without_training(tmp_path):
    s, store = _searcher(tmp_path)
    cfg = s.suggest("t1")
    s.on_trial_complete(trial_id="t1", result=_ok(0.3))
    # the strategy proposes the same architecture again, then a new one
    space = s.strategy.space
    queue = [space.encode(loads(cfg["genotype"])), space.encode(space.sample(random.Random(1)))]
    s.strategy._propose = lambda: (queue.pop(0), [], 0, None)
    cfg2 = s.suggest("t2")
    assert cfg2["hash"] != cfg["hash"]
    cached = [r for r in store.records() if r.cache_hit]
    assert len(cached) == 1 and cached[0].reward == 0.3 and cached[0].status == "cached"
    assert cached[0].metrics["cached_from"] == "t1"


def test_cache_hits_reach_the_strategy_marked_as_cached(tmp_path):
    s, store = _searcher(tmp_path, name="ppo")
    cfg = s.suggest("t1")
    s.on_trial_complete(trial_id="t1", result=_ok(0.3))
    repeat = s.strategy.space.encode(loads(cfg["genotype"]))
    queue = [(repeat, [-1.0] * len(repeat), 0, None)] * 3
    s.strategy._propose = lambda: queue.pop(0) if queue else _policy_propose(s.strategy)
    s.suggest("t2")
    stats = s.strategy.stats()
    # three hits told (and recorded), none learned from: one trained reward in the buffer
    assert stats["num_told"] == 4 and stats["buffered"] == 1 and store.count("cached") == 3


def _policy_propose(strategy):
    return type(strategy)._propose(strategy)


def test_converged_policy_finishes(tmp_path):
    s, store = _searcher(tmp_path, max_cache_hits=3)
    cfg = s.suggest("t1")
    s.on_trial_complete(trial_id="t1", result=_ok(0.3))
    actions = s.strategy.space.encode(loads(cfg["genotype"]))
    s.strategy._propose = lambda: (actions, [], 0, None)
    assert s.suggest("t2") == "FINISHED"
    assert store.count() == 1 + 4


def test_multi_objective_reward(tmp_path):
    s, store = _searcher(tmp_path, objective={"enabled": True, "cost": "macs", "target": 10.0, "weight": -0.5})
    s.suggest("t1")
    s.on_trial_complete(trial_id="t1", result=_ok(0.4))  # macs 20 = 2x target
    assert store.records()[0].reward == pytest.approx(0.4 * 2**-0.5)


def test_reconcile_tells_recorded_and_reruns_the_rest(tmp_path):
    s, store = _searcher(tmp_path, name="ppo")
    for t in ("a", "b", "c"):
        s.suggest(t)
    save_state(s.strategy, tmp_path / "state.pt")  # state saved with a, b, c outstanding
    store.append(s._record("a", s.running["a"], _ok(0.2), False))  # a finished, driver died before tell
    fresh = controller.build("ppo", SearchSpace(), seed=0)
    load_state(fresh, tmp_path / "state.pt")
    rerun = reconcile(fresh, {r.step: r for r in store.records()})
    assert [x.id for x in rerun] == [1, 2]
    assert fresh.stats()["num_told"] == 1


def test_searcher_pickles_without_driver_objects(tmp_path):
    import pickle

    s, _ = _searcher(tmp_path)
    s.listeners.append(lambda r, st: None)
    clone = pickle.loads(pickle.dumps(s))
    assert clone.store is None and clone.listeners == []
    assert json.loads(s.suggest("x")["genotype"])["format"] == "nasfpn-genotype"


def _repeat_first(s, first_cfg, times):
    """Make the strategy propose the architecture of `first_cfg` `times` times, then its own."""
    repeat = s.strategy.space.encode(loads(first_cfg["genotype"]))
    queue = [(repeat, [], 0, None)] * times
    s.strategy._propose = lambda: queue.pop(0) if queue else _policy_propose(s.strategy)


def test_in_flight_duplicate_waits_for_the_running_trial(tmp_path):
    s, store = _searcher(tmp_path)
    first = s.suggest("t1")
    _repeat_first(s, first, 2)
    second = s.suggest("t2")  # two proposals of t1's architecture wait, a new one trains
    assert second["hash"] != first["hash"] and store.count() == 0
    assert s.strategy.stats()["num_pending"] == 4
    s.on_trial_complete(trial_id="t1", result=_ok(0.3))
    records = store.records()
    assert [(r.trial_id, r.reward, r.cache_hit) for r in records] == [
        ("t1", 0.3, False),
        ("cached-1", 0.3, True),
        ("cached-2", 0.3, True),
    ]
    assert s.strategy.stats()["num_pending"] == 1 and not s.waiting


def test_in_flight_duplicate_trains_itself_when_the_running_trial_fails(tmp_path):
    s, store = _searcher(tmp_path)
    first = s.suggest("t1")
    _repeat_first(s, first, 1)
    s.suggest("t2")
    s.on_trial_complete(trial_id="t1", result={"final": True, "status": "nonfinite", "error": "loss is nan"})
    again = s.suggest("t3")  # the waiting duplicate, queued to run
    assert again["hash"] == first["hash"] and again["step"] == 1
    assert [r.status for r in store.records()] == ["nonfinite"]


def test_reevaluate_cached_trains_duplicates(tmp_path):
    s, _ = _searcher(tmp_path, reevaluate_cached=True)
    first = s.suggest("t1")
    _repeat_first(s, first, 1)
    assert s.suggest("t2")["hash"] == first["hash"]


def _drive(s, n, concurrency=2, cached_at=()):
    """Run `n` trials through the searcher, `concurrency` in flight, first in first out;
    the proposals at steps in `cached_at` repeat the first architecture (cache hits)."""
    first = None
    own = s.strategy._propose

    def propose():
        # the record holds each input pair sorted (canonical): propose them so, with their
        # log-probabilities, so that the replay can hand out exactly these actions
        space = s.strategy.space
        actions = space.encode(space.decode(own()[0]).canonical())  # draws as a real ask does
        if first is not None and s.strategy.num_asked in cached_at:
            actions = space.encode(loads(first["genotype"]))
        return actions, *s.strategy._score(actions), None

    s.strategy._propose = propose
    flight = []
    for k in range(n):
        cfg = s.suggest(f"t{k}")
        first = first or cfg
        flight.append(f"t{k}")
        if len(flight) == concurrency or k == n - 1:
            t = flight.pop(0)
            s.on_trial_complete(trial_id=t, result=_ok(0.01 * (k % 7) + 0.001 * k))
    for t in flight:
        s.on_trial_complete(trial_id=t, result=_ok(0.05))


@pytest.mark.parametrize("name", ["ppo", "evolution", "random"])
def test_rebuild_replays_the_record_into_the_same_state(tmp_path, name):
    s, store = _searcher(tmp_path, name=name)
    _drive(s, 14, cached_at=(6, 9))
    records = store.records()
    assert sum(r.cache_hit for r in records) == 2
    fresh = controller.build(name, SearchSpace(), seed=0)
    assert rebuild(fresh, records, concurrency=2) == []
    want, got = s.strategy.state_dict(), fresh.state_dict()
    for key in ("next_id", "num_told", "num_failed", "best_reward", "pending", "population", "baseline", "moments",
                "elite", "policy_version", "rng"):  # fmt: skip
        assert got.get(key) == want.get(key), key
    if name == "ppo":
        # same actions, rewards, batches and order: the same policy
        for k, w in want["policy"].items():
            torch.testing.assert_close(got["policy"][k], w, rtol=0, atol=1e-5)
    else:
        # the rebuilt strategy goes on with what the original would propose next, not with
        # the recorded architectures again (those would all be cache hits)
        del s.strategy._propose
        assert [fresh.ask().genotype.hash() for _ in range(3)] == [s.strategy.ask().genotype.hash() for _ in range(3)]
        assert fresh.ask().genotype.hash() not in {r.genotype_hash for r in records}


def test_rebuild_leaves_unrecorded_steps_to_run_again(tmp_path):
    s, store = _searcher(tmp_path, name="ppo")
    _drive(s, 6)
    for t in ("x", "y"):
        s.suggest(t)  # running when the driver (and its state file) were lost
    fresh = controller.build("ppo", SearchSpace(), seed=0)
    rerun = rebuild(fresh, store.records(), concurrency=2)
    assert rerun == [] and fresh.stats()["num_told"] == 6
    s.on_trial_complete(trial_id="y", result=_ok(0.2))  # y recorded, x not: x's step is missing
    fresh = controller.build("ppo", SearchSpace(), seed=0)
    rerun = rebuild(fresh, store.records(), concurrency=2)
    assert [x.id for x in rerun] == [6] and fresh.stats()["num_told"] == 7


def test_rebuild_tells_a_waiting_duplicate_where_the_record_holds_it(tmp_path):
    s, store = _searcher(tmp_path, name="evolution")
    first = s.suggest("a")  # architecture A
    s.suggest("b")
    own = s.strategy._propose
    queue = [s.strategy.space.encode(loads(first["genotype"]))]  # the next proposal repeats A
    s.strategy._propose = lambda: (queue.pop(0), [], 0, None) if queue else own()
    s.suggest("c")  # A waits for "a"; "c" trains a new architecture
    s.on_trial_complete(trial_id="b", result=_ok(0.2))
    s.on_trial_complete(trial_id="a", result=_ok(0.1))  # releases the duplicate: told now
    s.on_trial_complete(trial_id="c", result=_ok(0.3))
    records = store.records()
    assert [(r.step, r.cache_hit) for r in records] == [(1, False), (0, False), (2, True), (3, False)]
    fresh = controller.build("evolution", SearchSpace(), seed=0)
    assert rebuild(fresh, records, concurrency=3) == []
    assert fresh.state_dict()["population"] == s.strategy.state_dict()["population"]  # same order of tells
