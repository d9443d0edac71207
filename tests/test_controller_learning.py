"""What the policy-gradient strategies learn from: cache hits, failures, scale, elites."""

import pytest

import controller
from space import SearchSpace

SPACE = SearchSpace()


def _told(name="ppo", **options):
    return controller.build(name, SPACE, seed=0, hidden_size=16, **options)


@pytest.mark.parametrize("name", ["ppo", "reinforce"])
def test_cache_hits_are_not_learned_from_unless_asked(name):
    strategy = _told(name, batch_size=3)
    strategy.tell(strategy.ask(), 0.5)
    for _ in range(10):  # ten hits of one lucky architecture: no update, baseline unmoved
        strategy.tell(strategy.ask(), 0.9, cached=True)
    stats = strategy.stats()
    assert stats["policy_version"] == 0 and stats["buffered"] == 1 and stats["baseline"] == 0.5
    assert stats["num_told"] == 11
    learner = _told(name, batch_size=3, learn_cached=True)
    learner.tell(learner.ask(), 0.5)
    for _ in range(2):
        learner.tell(learner.ask(), 0.9, cached=True)
    assert learner.stats()["policy_version"] == 1


def test_normalized_advantages_do_not_depend_on_the_reward_scale():
    rewards = [0.02, 0.035, 0.011, 0.028, 0.019, 0.045, 0.0, 0.03]
    buffers = []
    for scale in (1.0, 25.0):
        strategy = _told(batch_size=100)
        for r in rewards:
            strategy.tell(strategy.ask(), r * scale)
        buffers.append([b["advantage"] for b in strategy._buffer])
    assert buffers[0] == pytest.approx(buffers[1], rel=1e-9)
    assert max(abs(a) for a in buffers[0]) <= 3.0
    # the second reward is sqrt(2) standard deviations (of the two) above the first
    assert buffers[0][1] == pytest.approx(2**0.5)


def test_elite_keeps_the_best_distinct_architectures_best_first():
    strategy = _told(batch_size=100, elite_size=3)
    samples = [strategy.ask() for _ in range(6)]
    for s, r in zip(samples, [0.1, 0.5, 0.3, 0.2, 0.4, 0.05]):
        strategy.tell(s, r)
    repeat = strategy.ask()
    strategy.tell(repeat, 0.9, cached=True)  # a cache hit never enters the elite
    elite = strategy.state_dict()["elite"]
    assert [e["reward"] for e in elite] == [0.5, 0.4, 0.3]
    assert [e["actions"] for e in elite] == [list(samples[k].actions) for k in (1, 4, 2)]
    assert strategy.stats()["elite_best"] == 0.5


def test_elite_imitation_raises_the_likelihood_of_the_elite():
    def elite_log_prob(strategy):
        import torch

        actions = torch.tensor([e["actions"] for e in strategy._elite])
        return float(strategy.policy.log_probs(actions)[0].sum(1).mean().detach())

    with_elite = _told(batch_size=5, elite_size=2, elite_steps=5, tanh_constant=None)
    without = _told(batch_size=5, elite_size=2, elite_steps=0, tanh_constant=None)
    for strategy in (with_elite, without):
        for r in [0.1, 0.5, 0.3, 0.2, 0.4]:
            strategy.tell(strategy.ask(), r)
    # same seed, same samples, same rewards: the elite steps are the only difference
    assert with_elite._elite == without._elite
    assert elite_log_prob(with_elite) > elite_log_prob(without) + 1.0


def test_policy_gradient_options_are_checked():
    with pytest.raises(ValueError, match="elite_size >= 1"):
        _told(elite_size=0, elite_steps=2)


def test_paper_preset_is_nasnet_schedule():
    name, options = controller.preset("ppo_paper")
    strategy = controller.build(name, SPACE, **options)
    assert strategy.options == controller.PRESETS["ppo_paper"]
    assert strategy.options.lr == 3.5e-4 and strategy.options.batch_size == 20
    assert strategy.options.baseline_decay == 0.95 and strategy.options.tanh_constant is None
    assert strategy.options.learn_cached and not strategy.options.normalize_advantage
    assert strategy.options.elite_steps == 0 and strategy.options.ppo_epochs == 10


def test_paper_preset_is_a_hydra_controller_option(tmp_path):
    from search.config import controller_options
    from tests.search_helpers import compose_search

    cfg = compose_search(tmp_path, "controller=ppo_paper", "controller.lr=1e-4")
    name, options = controller_options(cfg["controller"])
    assert name == "ppo" and options["batch_size"] == 20 and options["lr"] == 1e-4
    assert controller.build(name, SPACE, **options).options.tanh_constant is None
    default = compose_search(tmp_path, "controller=ppo")["controller"]
    assert default["batch_size"] == 5 and default["tanh_constant"] == 2.5
