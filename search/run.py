"""`python -m search.run`: a NAS-FPN search on Ray Tune. Hydra app; see search/config.py.

    python -m search.run                                   # PPO on the built-in dataset, local Ray
    python -m search.run controller=evolution name=evo num_trials=100
    python -m search.run proxy_task=coco_paper proxy_task.data_root=/data/coco \
        ray.address=auto resources.gpus=1 concurrency=100 num_trials=10000 time_budget_s=null

Running the same command again (same name and storage_path) resumes: the record
(storage_path/name/trials.sqlite) is the source of truth; completed trials are never
re-run, trials that were running are run again, the controller continues from its own
checkpoint. Each driver session is a fresh Tune experiment under storage_path/name/tune.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from search.config import register_configs


@hydra.main(version_base=None, config_path="conf", config_name="search")
def main(cfg: DictConfig) -> None:
    from search.driver import run_search
    from search.errors import SearchSetupError

    try:
        plain: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[assignment]
        run_search(plain)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        sys.exit(130)
    except SearchSetupError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    register_configs()  # Hydra's ConfigStore must hold the schema before main() composes
    main()
