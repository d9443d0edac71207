"""The NAS-FPN proxy task: RetinaNet on a genotype pyramid, trained and scored by COCO box AP.

Public API: `ProxyTask(config, device)` (built once per worker; `.train(genotype, seed,
on_epoch)` returns `TrialMetrics`), `train_and_evaluate` (one training on a fresh task),
`ProxyTaskConfig` and its presets, `register_configs(cs)` for Hydra, `NonFiniteLossError`.
"""

from proxy_task.config import PRESETS, ProxyTaskConfig, preset, register_configs, tiny_config
from proxy_task.data import DataError
from proxy_task.metrics import METRIC_KEYS, TrialMetrics
from proxy_task.task import ProxyTask, train_and_evaluate
from proxy_task.trainer import NonFiniteLossError, resolve_device

__all__ = [
    "METRIC_KEYS",
    "PRESETS",
    "DataError",
    "NonFiniteLossError",
    "ProxyTask",
    "ProxyTaskConfig",
    "TrialMetrics",
    "preset",
    "register_configs",
    "resolve_device",
    "tiny_config",
    "train_and_evaluate",
]
