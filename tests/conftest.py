"""Shared test setup: caches and runs under tmp dirs, no telemetry, W&B offline."""

import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def nasfpn_cache(tmp_path_factory):
    """One dataset/backbone cache for the whole session (NASFPN_CACHE), under tmp."""
    path = os.environ.get("NASFPN_CACHE") or str(tmp_path_factory.mktemp("nasfpn_cache"))
    os.environ["NASFPN_CACHE"] = path
    return path
