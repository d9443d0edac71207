"""LSTM policy, PPO and REINFORCE: masking, stored log-probabilities, learning."""

import random

import pytest
import torch

import controller
from controller import LSTMPolicy
from space import SearchSpace

SPACE = SearchSpace()


def _check_valid(space, sample):
    g = space.decode(sample.actions)  # raises if any action was masked out
    assert g == sample.genotype
    space.contains(g)
    assert all(c.level != space.min_level for c in g.cells[: space.num_intermediate])
    assert sorted(c.level for c in g.cells[space.num_intermediate :]) == list(space.levels)


ORDERS = [{}, {"decision_order": "level_first"}, {"decision_order": "level_first", "distance_bias": True}]


@pytest.mark.parametrize(
    "shaping",
    [{}, {"temperature": 0.2, "tanh_constant": 2.5}, {"decision_order": "level_first", "distance_bias": True}],
)
def test_peaked_random_policy_never_samples_an_invalid_choice(shaping):
    # init_range 3 gives near-deterministic softmaxes: a wrong mask would show at once
    policy = LSTMPolicy(SPACE, hidden_size=32, init_range=3.0, seed=3, **shaping)
    sampler, rng = policy.sampler(), random.Random(0)
    for _ in range(1500):
        actions, log_probs = sampler.sample(rng)
        SPACE.decode(actions)
        assert all(lp > -30 for lp in log_probs)


@pytest.mark.parametrize("name", ["ppo", "reinforce"])
def test_policy_strategies_stay_valid_while_learning(name):
    strategy = controller.build(name, SPACE, lr=3e-2, batch_size=10, seed=1)
    for _ in range(1000):
        sample = strategy.ask()
        _check_valid(SPACE, sample)
        strategy.tell(sample, float(sample.actions[-1] + sample.actions[2]))
    assert strategy.stats()["policy_version"] == 100


@pytest.mark.parametrize("order", ORDERS)
def test_recomputed_log_probs_equal_the_stored_ones(order):
    strategy = controller.build("ppo", SPACE, batch_size=5, temperature=1.5, tanh_constant=2.0, seed=2, **order)
    for _ in range(15):  # three updates: weights away from their initial values
        s = strategy.ask()
        strategy.tell(s, float(s.actions[3]))
    samples = [strategy.ask() for _ in range(8)]
    actions = torch.tensor([s.actions for s in samples])
    log_probs, entropy = strategy.policy.log_probs(actions)
    stored = torch.tensor([s.log_probs for s in samples])
    assert torch.allclose(log_probs, stored, atol=1e-5)
    assert torch.allclose(log_probs.sum(1), torch.tensor([s.log_prob for s in samples]), atol=1e-4)
    assert (entropy >= 0).all()
    # the op decision has 2 choices: entropy <= log 2; a forced choice has entropy 0
    assert (entropy[:, 3] <= torch.log(torch.tensor(2.0)) + 1e-6).all()
    last_output_level = SPACE.num_steps - 2
    assert torch.allclose(entropy[:, last_output_level], torch.zeros(8), atol=1e-6)
    assert torch.allclose(log_probs[:, last_output_level], torch.zeros(8), atol=1e-6)


def test_masked_choices_get_zero_probability_in_training_path():
    policy = LSTMPolicy(SPACE, seed=0)
    actions = torch.tensor([SPACE.encode(SPACE.sample(random.Random(k))) for k in range(4)])
    masks = policy.masks(actions.tolist())
    assert masks.shape == (SPACE.num_steps, 4, SPACE.max_pool_size)
    # input j of cell 0 excludes input i; pool entries beyond the pool are padding
    for b in range(4):
        assert not masks[1, b, actions[b, 0]]
        assert masks[1, b, :5].sum() == 4 and not masks[1, b, 5:].any()


def test_level_first_chooses_inputs_after_the_level_and_learns_the_distance_bias():
    policy = LSTMPolicy(SPACE, decision_order="level_first", distance_bias=True)
    # cell 0: level (step 2), op (3), then inputs i (0), j (1)
    assert policy.order[:8] == [2, 3, 0, 1, 6, 7, 4, 5] and sorted(policy.order) == list(range(SPACE.num_steps))
    # a cell's level and op masks never read its own inputs, so they can be chosen first
    rng = random.Random(0)
    for _ in range(200):
        actions = SPACE.encode(SPACE.sample(rng))
        for t, d in enumerate(SPACE.decisions):
            if d.kind in ("level", "op"):
                other = list(actions[:t])
                other[4 * d.cell], other[4 * d.cell + 1] = 1, 0
                assert SPACE.mask(actions[:t]) == SPACE.mask(other)
    # distance index of cell 0's input i at level P4 (choice 1): pool P3..P7 -> 1, 0, 1, 2, 3
    actions = SPACE.encode(SPACE.sample(random.Random(1)))
    actions[2] = 1
    dist = policy.distances([actions])  # (T, 1, C), policy order
    assert dist[2, 0, :5].tolist() == [1, 0, 1, 2, 3] and (dist[0, 0] == SPACE.num_levels).all()
    strategy = controller.build("ppo", SPACE, seed=0, decision_order="level_first", distance_bias=True)
    for _ in range(10):
        strategy.tell(strategy.ask(), 0.1 * random.random())
    assert strategy.policy.distance_bias.abs().sum() > 0  # learned, not fixed
    with pytest.raises(ValueError, match="distance_bias needs"):
        LSTMPolicy(SPACE, distance_bias=True)
    with pytest.raises(ValueError, match="decision_order='sideways'"):
        LSTMPolicy(SPACE, decision_order="sideways")


def _easy_reward(sample):
    """Fraction of cells whose op is `attention` (index 1): random policy scores 0.5."""
    return sum(sample.actions[4 * k + 3] for k in range(SPACE.num_cells)) / SPACE.num_cells


@pytest.mark.parametrize("name,options", [("ppo", {}), ("reinforce", {"lr": 1e-2})])
def test_learns_an_easy_landscape_in_a_few_updates(name, options):
    strategy = controller.build(name, SPACE, seed=0, **options)
    rewards = []
    for _ in range(160):
        s = strategy.ask()
        rewards.append(_easy_reward(s))
        strategy.tell(s, rewards[-1])
    first, last = sum(rewards[:5]) / 5, sum(rewards[-20:]) / 20  # the first 5: before any update
    assert first < 0.75
    assert last > 0.8, (first, last)
    assert strategy.stats()["policy_version"] == 160 // strategy.options.batch_size
