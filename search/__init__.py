"""The search: `python -m search.run` (Hydra) runs a controller strategy on Ray Tune.

Pieces: `config` (structured configs), `searcher` (the strategy as a Tune Searcher, with
the reward cache and the crash-safe record), `trainable` (one proxy-task trial in a Ray
worker), `state` (controller checkpoints), `progress`, `wandb_logger`, `run` (entry point).
"""
