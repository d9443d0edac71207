"""Which setting changes refuse a resume: those that change a trial's reward."""

from search.driver import reward_settings_changed


def test_reward_settings_are_compared_and_machine_settings_are_free():
    started = {
        "proxy_task": {"epochs": 3.0, "anchor_ratios": [0.5, 1.0], "num_threads": 1, "cache_dir": "/a", "old": 1},
        "objective": {"enabled": False, "weight": -0.07},
        "num_trials": 80,
        "seed": 0,
    }
    same = {
        "proxy_task": {"epochs": 3.0, "anchor_ratios": (0.5, 1.0), "num_threads": 4, "cache_dir": "/b", "new": 2},
        "objective": {"enabled": False, "weight": -0.07},
        "num_trials": 200,  # a larger budget is how a run is extended
        "seed": 0,
    }
    assert reward_settings_changed(started, same) == []
    other = {
        **same,
        "proxy_task": {**same["proxy_task"], "epochs": 9.0},
        "objective": {"enabled": True, "weight": -0.07},
    }
    assert reward_settings_changed(started, other) == ["proxy_task.epochs=3.0", "objective.enabled=False"]
    assert reward_settings_changed(started, {**same, "seed": 1}) == ["seed=0"]  # the trials' training seed
    latency = {**same, "objective": {"enabled": True, "cost": "latency", "weight": -0.07}}
    started_latency = {**started, "objective": latency["objective"]}
    assert reward_settings_changed(started_latency, latency) == ["proxy_task.num_threads=1"]  # latency depends on it


def test_a_record_older_than_a_reward_setting_had_its_earlier_value():
    older = {"proxy_task": {"epochs": 3.0}, "seed": 0}  # made before `focal_loss` existed: torchvision's
    assert reward_settings_changed(older, {"proxy_task": {"epochs": 3.0, "focal_loss": "fused"}, "seed": 0}) == [
        "proxy_task.focal_loss=torchvision"
    ]
    assert reward_settings_changed(older, {"proxy_task": {"epochs": 3.0, "focal_loss": "torchvision"}, "seed": 0}) == []
    newer = {"proxy_task": {"epochs": 3.0, "focal_loss": "fused"}, "seed": 0}
    assert reward_settings_changed(newer, {"proxy_task": {"epochs": 3.0, "focal_loss": "fused"}, "seed": 0}) == []
