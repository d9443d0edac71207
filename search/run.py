"""`python -m search.run`: a NAS-FPN search on Ray Tune. Hydra app; see search/config.py.

    python -m search.run                                   # PPO on BCCD (shipped real images), local Ray
    python -m search.run controller=evolution name=evo num_trials=100
    python -m search.run proxy_task=coco_paper proxy_task.data_root=/data/coco \
        ray.address=auto resources.gpus=1 concurrency=100 num_trials=10000 time_budget_s=null

Running the same command again (same name and storage_path) resumes: the record
(storage_path/name/trials.sqlite) is the source of truth; completed trials are never
re-run, trials that were running are run again, the controller continues from its own
checkpoint. Each driver session is a fresh Tune experiment under storage_path/name/tune.

Exit codes: 0 done (or the time budget spent); 2 refused at start (bad config or
environment, one line); 1 stopped because the record could not be written (one line; the
finished trials are kept for the next run); 130 / 143 stopped by SIGINT / SIGTERM with every
finished trial kept.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from proxy_task.cli import run_app
from search.config import register_configs


def run_and_report(plain: dict[str, Any], trainable: Callable[..., None] | None = None) -> int:
    """`run_search(plain, trainable)` with the command line's one-line messages; returns the
    exit code (see above). Fault-injection benchmarks call it in their driver processes."""
    from search.driver import run_search
    from search.errors import SearchSetupError, SearchStopped
    from search.signals import raise_on_sigterm

    raise_on_sigterm()
    try:
        run_search(plain, trainable)
    except KeyboardInterrupt as e:  # Interrupted (SIGTERM, a second signal) or a plain Ctrl-C
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name}): run the same command again to resume", file=sys.stderr)
        return 128 + signum
    except SearchStopped as e:
        print(f"error: {e}" if e.exit_code == 1 else str(e), file=sys.stderr)
        return e.exit_code
    except SearchSetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def run(cfg: DictConfig) -> None:
    plain: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[assignment]
    code = run_and_report(plain)
    if code:
        sys.exit(code)


def main() -> None:
    """The command line: a bad override is one line and exit 2, as a bad value is."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    register_configs()  # Hydra's ConfigStore must hold the schema before anything composes
    run_app(run, "search", Path(__file__).parent / "conf")


if __name__ == "__main__":
    main()
