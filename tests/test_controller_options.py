"""Strategy options: one dataclass per strategy, which `build`, checkpoints, Hydra and run
labels all read."""

import dataclasses

import pytest

import controller
from controller import EvolutionOptions, PPOOptions, ReinforceOptions
from space import SearchSpace

SPACE = SearchSpace()


def test_options_keep_the_keys_that_records_and_checkpoints_hold():
    # state_dict()["options"] and a record's controller node are compared on resume: a
    # renamed or dropped key would refuse every earlier run
    shared = ["failure_reward", "seed"]
    policy_gradient = shared + [
        "lr", "batch_size", "entropy_weight", "baseline_decay", "temperature", "tanh_constant",
        "hidden_size", "num_layers", "grad_clip", "normalize_advantage", "elite_size", "elite_steps",
        "learn_cached", "decision_order", "distance_bias",
    ]  # fmt: skip
    assert list(controller.default_options("random")) == shared
    assert list(controller.default_options("evolution")) == shared + ["population_size", "sample_size"]
    assert list(controller.default_options("reinforce")) == policy_gradient
    assert list(controller.default_options("ppo")) == policy_gradient + ["ppo_epochs", "clip"]
    for name in controller.STRATEGIES:
        assert list(controller.build(name, SPACE).state_dict()["options"]) == list(controller.default_options(name))


def test_build_makes_the_options_and_they_check_themselves():
    ppo = controller.build("ppo", SPACE, lr=1e-3, clip=0.1, seed=4)
    assert ppo.options == PPOOptions(lr=1e-3, clip=0.1, seed=4)
    assert ppo.state_dict()["options"] == dataclasses.asdict(ppo.options)
    with pytest.raises(ValueError, match="ppo_epochs must be >= 1"):
        PPOOptions(ppo_epochs=0)
    with pytest.raises(ValueError, match="sample_size <= population_size"):
        EvolutionOptions(population_size=3, sample_size=4)
    with pytest.raises(TypeError):
        controller.build("reinforce", SPACE, clip=0.1)  # a PPO option
    with pytest.raises(TypeError, match="Reinforce takes ReinforceOptions, got PPOOptions"):
        controller.Reinforce(SPACE, PPOOptions())
    with pytest.raises(dataclasses.FrozenInstanceError):
        ppo.options.lr = 1.0  # type: ignore[misc]
    assert controller.Reinforce(SPACE).options == ReinforceOptions()


def test_presets_are_options_and_name_what_they_change():
    name, changed = controller.preset("ppo_paper")
    assert name == "ppo" and isinstance(controller.PRESETS["ppo_paper"], PPOOptions)
    assert changed == {
        "lr": 3.5e-4, "batch_size": 20, "baseline_decay": 0.95, "tanh_constant": None,
        "normalize_advantage": False, "learn_cached": True,
    }  # fmt: skip
    assert PPOOptions(**changed) == controller.PRESETS["ppo_paper"]


@pytest.mark.parametrize("group", [*controller.STRATEGIES, *controller.PRESETS])
def test_hydra_controller_nodes_are_the_options_without_the_shared_ones(tmp_path, group):
    from tests.search_helpers import compose_search

    node = compose_search(tmp_path, f"controller={group}")["controller"]
    name = node.pop("name")
    expected = dataclasses.asdict(controller.PRESETS.get(group) or controller.STRATEGIES[name].options_type())
    for shared in ("failure_reward", "seed"):  # set once at the top level of the config
        del expected[shared]
    assert node == expected
