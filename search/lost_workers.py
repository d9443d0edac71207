"""A trial worker lost to Ray's memory monitor is a crashed trial, not the end of the search.

When a node runs low on memory, Ray's memory monitor kills the newest workers and their
running task fails with `ray.exceptions.OutOfMemoryError`. Tune's actor manager handles
only `RayActorError` (the actor died) and `RayTaskError` (the code raised) and raises
`RuntimeError("Caught unexpected exception ...")` for anything else, out of `Tuner.fit`:
the whole search died with the first OOM kill. The same holds for the other ways Ray
reports a lost worker (`WorkerCrashedError`, `NodeDiedError`, `OutOfDiskError`, ...).

`tolerate_lost_workers()` routes every such `RayError` through the `RayActorError` path,
so Tune retries the trial (FailureConfig) and, after the last retry, the searcher records
it as failed with the cause's first line. It patches one method of Ray's private
`RayActorManager` (checked on ray 2.60), once per process.
"""

from __future__ import annotations

from typing import Any

_installed = False


def as_actor_error(exception: BaseException) -> BaseException:
    """`exception`, or a RayActorError carrying its first line when Tune would not handle it."""
    from ray.exceptions import RayActorError, RayError, RayTaskError

    if isinstance(exception, (RayActorError, RayTaskError)) or not isinstance(exception, RayError):
        return exception
    first = next((ln for ln in str(exception).splitlines() if ln.strip()), "")
    return RayActorError(error_msg=f"{type(exception).__name__}: {first}"[:500])


def tolerate_lost_workers() -> None:
    """Make Tune treat a worker lost to OOM (or another Ray system error) as a failed trial."""
    global _installed
    if _installed:
        return
    from ray.air.execution._internal.actor_manager import RayActorManager

    failed = RayActorManager._actor_task_failed

    def actor_task_failed(self: Any, tracked_actor_task: Any, exception: Exception) -> None:
        failed(self, tracked_actor_task, as_actor_error(exception))

    RayActorManager._actor_task_failed = actor_task_failed  # type: ignore[method-assign]
    _installed = True
