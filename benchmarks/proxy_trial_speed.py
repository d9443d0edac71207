"""Trainings per hour of one search worker, per proxy variant, against the reference in one run.

    python -m benchmarks.proxy_trial_speed [--reps 3] [--genotypes nasfpn_paper fpn]

A warm worker (data, backbone and features already cached in the process, as in a search
with actor reuse) trains each genotype under each variant, interleaved rep by rep so that
machine load hits all variants alike; one thread per trial, CPU. Variants:

  reference      anchor assignments computed every step, torchvision's focal loss, NCHW
                 (the proxy before the cache)
  match_cache    anchor assignments cached per image and process (exact: same AP)
  channels_last  match_cache + channels_last memory format (different float rounding:
                 the AP changes like a change of machine; `studies.variance against=...`
                 measures whether the ranking holds)
  fused_focal    channels_last + the fused focal loss (proxy_task.focal; float rounding
                 again): the default proxy

One process runs all variants, so the later ones run in whatever state the reference left
it. One such state is known: ATen's scalar log1p runs ~10x faster once the process has run
a vectorized pow (torchvision's focal loss does); the fused loss's first version used
log1p and was timed here faster than a search worker, which never runs torchvision's loss,
ran it. The current fused loss does not use log1p (proxy_task.focal.softplus_pair).

All variants run this code, so the loss targets built once per step for all exits (exact)
are in every one of them.

Prints the median seconds per trial, the ratio of trainings per hour against the
reference, and whether each variant's APs equal the reference's bit for bit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import space
from proxy_task import ProxyTask, ProxyTaskConfig


class _NoStore(dict):
    """A match cache that keeps nothing: every step computes its assignments."""

    def __setitem__(self, key: object, value: object) -> None:
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--genotypes", nargs="+", default=["nasfpn_paper", "fpn"])
    args = p.parse_args()
    torch.set_num_threads(1)
    base = ProxyTask(ProxyTaskConfig(channels_last=False, focal_loss="torchvision"), "cpu")
    feats = base.frozen[1]  # shared by every variant (derive)
    shared = feats.matches
    variants = {  # the task and the anchor-assignment cache it trains with
        "reference": (base, _NoStore()),  # every step assigns anchors again
        "match_cache": (base, shared),
        "channels_last": (base.derive(channels_last=True), shared),
        "fused_focal": (base.derive(channels_last=True, focal_loss="fused"), shared),
    }
    genotypes = {name: space.load_builtin(name) for name in args.genotypes}
    base.train(genotypes[args.genotypes[0]], 0)  # warm-up: caches, allocator
    seconds: dict[str, list[float]] = {v: [] for v in variants}
    aps: dict[str, dict[str, float]] = {v: {} for v in variants}
    for rep in range(args.reps):
        for name, genotype in genotypes.items():
            for variant, (task, matches) in variants.items():
                feats.matches = matches
                start = time.perf_counter()
                m = task.train(genotype, 0)
                seconds[variant].append(time.perf_counter() - start)
                aps[variant][name] = m.ap
                print(f"rep {rep} {name} {variant}: {seconds[variant][-1]:.2f} s, AP {m.ap:.5f}", flush=True)
    feats.matches = shared
    median = {v: statistics.median(s) for v, s in seconds.items()}
    report = {
        "genotypes": args.genotypes,
        "reps": args.reps,
        "median_seconds_per_trial": median,
        "trainings_per_hour": {v: 3600 / s for v, s in median.items()},
        "speedup_vs_reference": {v: median["reference"] / s for v, s in median.items()},
        "ap_identical_to_reference": {v: aps[v] == aps["reference"] for v in variants},
        "ap": aps,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
