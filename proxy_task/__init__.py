"""The NAS-FPN proxy task: RetinaNet on a genotype pyramid, trained and scored by COCO box AP.

Public API: `train_and_evaluate(genotype, task, seed, device, on_epoch, out_dir)`,
`ProxyTaskConfig` and its presets, `register_configs(cs)` for Hydra, `NonFiniteLossError`.
"""

from proxy_task.config import PRESETS, ProxyTaskConfig, preset, register_configs, tiny_config
from proxy_task.data import DataError
from proxy_task.trainer import NonFiniteLossError, resolve_device, train_and_evaluate

__all__ = [
    "PRESETS",
    "DataError",
    "NonFiniteLossError",
    "ProxyTaskConfig",
    "preset",
    "register_configs",
    "resolve_device",
    "tiny_config",
    "train_and_evaluate",
]
