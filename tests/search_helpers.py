"""Config composition for search tests (the same path as the Hydra entry point)."""

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from search.config import register_configs


def compose_search(storage, *overrides):
    """Resolved config dict for a tiny search under `storage`."""
    register_configs()
    with initialize_config_module(version_base=None, config_module="search.conf"):
        cfg = compose(
            "search",
            overrides=[f"storage_path={storage}", "proxy_task=tiny", "ray.num_cpus=2", *overrides],
        )
    return OmegaConf.to_container(cfg, resolve=True)
