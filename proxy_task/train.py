"""Train and evaluate one genotype: `python -m proxy_task.train genotype=PATH.json [proxy_task=bccd]`.

Other keys: seed=0, device=auto, out_dir=runs/<genotype name>-<hash>, and any preset field as
`proxy_task.FIELD=VALUE`. Prints a progress bar with ETA, then the metrics; writes
metrics.json and checkpoint.pt to out_dir. A bad path, genotype or config value prints one
line on stderr and exits with status 2. `genotype=paper` / `genotype=fpn` name the built-ins.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

import space
from proxy_task.cli import run_app
from proxy_task.config import ProxyTaskConfig, register_configs
from proxy_task.evaluator import AP_KEYS


@dataclass
class TrainConfig:
    genotype: str = MISSING
    seed: int = 0
    device: str = "auto"
    out_dir: str = ""
    defaults: list = field(default_factory=lambda: [{"proxy_task": "bccd"}, "_self_"])
    proxy_task: ProxyTaskConfig = MISSING


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def run(cfg: DictConfig) -> dict:
    """Resolve the config and train; errors that a user can fix become one line and exit 2."""
    from proxy_task.data import DataError
    from proxy_task.task import train_and_evaluate
    from proxy_task.trainer import NonFiniteLossError

    try:
        genotype = space.load_spec(cfg.genotype)
        task = ProxyTaskConfig(**OmegaConf.to_container(cfg.proxy_task, resolve=True, throw_on_missing=True))
    except (OSError, ValueError) as e:  # GenotypeError is a ValueError
        _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    out_dir = Path(cfg.out_dir or f"runs/{task.name}-{genotype.hash()}-s{cfg.seed}")
    try:
        metrics = train_and_evaluate(genotype, task, cfg.seed, cfg.device, out_dir=out_dir, progress=True)
    except (DataError, FileNotFoundError, NonFiniteLossError) as e:
        _fail(str(e).splitlines()[0])
    print(json.dumps({k: getattr(metrics, k) for k in AP_KEYS}, indent=None))
    print(
        f"params {metrics.params:,}  macs {metrics.macs:,}  latency {metrics.eval_latency_ms:.1f} ms/img"
        f"  trained in {metrics.train_time_s:.1f} s  ->  {out_dir}/metrics.json, checkpoint.pt"
    )
    return metrics.as_dict()


def main() -> None:
    """Hydra entry point (with a friendly error for a missing or invalid override)."""
    logging.getLogger("proxy_task").setLevel(logging.INFO)
    cs = ConfigStore.instance()
    cs.store(name="train", node=TrainConfig)
    register_configs(cs)
    if not any(a.startswith("genotype=") for a in sys.argv[1:]) and not any(a.startswith("-") for a in sys.argv[1:]):
        _fail("missing genotype=PATH.json (or genotype=paper / genotype=fpn)")
    run_app(run, "train")


if __name__ == "__main__":
    main()
