"""A worker lost to Ray's memory monitor (or another Ray system error) reaches Tune as an
actor error, which Tune retries; the real OOM kill is in test_reliability.py."""


def test_a_worker_lost_to_ray_errors_is_a_failed_trial_for_tune():
    from ray.exceptions import OutOfMemoryError, RayActorError, RayTaskError

    from search.lost_workers import as_actor_error

    oom = OutOfMemoryError("1 worker(s) were killed due to the node running low on memory.\nMemory on the node ...")
    converted = as_actor_error(oom)
    assert isinstance(converted, RayActorError)  # the error Tune retries (it raised RuntimeError for OOM)
    assert str(converted) == "OutOfMemoryError: 1 worker(s) were killed due to the node running low on memory."
    task_error = RayTaskError("f", "traceback", ValueError("x"))
    assert as_actor_error(task_error) is task_error
    other = ValueError("not Ray's")
    assert as_actor_error(other) is other
