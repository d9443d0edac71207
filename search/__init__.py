"""The search: `python -m search.run` (Hydra) runs a controller strategy on Ray Tune.

Pieces: `config` (structured configs), `settings` (the resolved config checked and mapped
to typed objects, once), `driver` (resume, the run from start to summary), `tune_runner` (Ray and Tune wiring), `searcher` (the strategy as a Tune
Searcher, with the reward cache and the crash-safe record), `trainable` (one proxy-task
trial in a Ray worker), `deadline` (the per-trial time limit), `reward` (AP, or AP with a
cost term), `errors` (SearchSetupError, raised before any work starts), `state`
(controller checkpoints, rebuilt from the record when lost), `progress` (the status line), `wandb_logger` (the driver's W&B
run), `run` (entry point).
"""
