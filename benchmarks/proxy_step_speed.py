"""Train-step images/s and peak memory, paper genotype vs FPN baseline at equal N@C.

`python -m benchmarks.proxy_step_speed [image_size] [channels] [repeats] [batch]`: end-to-end
steps (backbone included) on random images, each configuration in a fresh subprocess so
peak memory (CUDA: max_memory_allocated; CPU: max RSS growth) is its own; with and without
channels_last. One thread on the CPU.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import torch

import space
from proxy_task.backbones import build_backbone
from proxy_task.detector import build_detector
from proxy_task.trainer import resolve_device


def one(genotype: str, channels_last: bool, size: int, channels: int, repeats: int, batch: int) -> dict:
    torch.set_num_threads(1)
    dev = resolve_device("auto")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bb = build_backbone("resnet10", 0.25 if dev.type == "cpu" else 1.0)
    model = build_detector(
        space.load_builtin(genotype),
        bb,
        bb.out_channels,
        6,
        channels=channels,
        repeats=repeats,
        anchor_scale=size / 128,
        init_seed=0,
    ).to(dev)
    x = torch.randn(batch, 3, size, size, device=dev)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    s = size / 128
    targets = [
        {
            "boxes": torch.tensor([[10.0, 10, 40, 50], [50, 60, 90, 120]], device=dev) * s,
            "labels": torch.tensor([1, 2], device=dev),
        }
    ] * batch
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    amp = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")

    def step():
        with amp:
            loss = sum(model(x, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    n = 10 if dev.type == "cuda" else 5
    start = time.perf_counter()
    for _ in range(n):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = (
        torch.cuda.max_memory_allocated()
        if dev.type == "cuda"
        else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024
    )
    return {
        "genotype": genotype,
        "channels_last": channels_last,
        "img_s": n * batch / elapsed,
        "peak_mb": peak / 2**20,
        "device": str(dev),
    }


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(one(sys.argv[2], sys.argv[3] == "1", *map(int, sys.argv[4:8]))))
        return
    args = sys.argv[1:5] or ["128", "32", "3", "16"]
    rows = []
    for genotype in ("nasfpn_paper", "fpn"):
        for cl in ("0", "1"):
            cmd = [sys.executable, "-m", "benchmarks.proxy_step_speed", "--one", genotype, cl, *args]
            rows.append(
                json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            )
    for r in rows:
        print(
            f"{r['genotype']:13s} channels_last={r['channels_last']!s:5s} {r['img_s']:8.1f} img/s  peak {r['peak_mb']:8.1f} MB"
        )
    by = {(r["genotype"], r["channels_last"]): r for r in rows}
    print(
        json.dumps(
            {
                "size_channels_repeats_batch": args,
                "paper_over_fpn_speed": by[("nasfpn_paper", False)]["img_s"] / by[("fpn", False)]["img_s"],
                "paper_over_fpn_memory": by[("nasfpn_paper", False)]["peak_mb"]
                / max(1e-9, by[("fpn", False)]["peak_mb"]),
                "channels_last_speedup_paper": by[("nasfpn_paper", True)]["img_s"]
                / by[("nasfpn_paper", False)]["img_s"],
                "channels_last_speedup_fpn": by[("fpn", True)]["img_s"] / by[("fpn", False)]["img_s"],
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
