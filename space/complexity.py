"""Parameter and multiply-add counts of a module (torch's own flop counter, no hand rules)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(module: nn.Module) -> int:
    """Trainable parameters (BN running statistics are buffers and not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@torch.no_grad()
def count_macs(module: nn.Module, example_inputs: Sequence[object]) -> int:
    """Multiply-adds of one forward pass on `example_inputs` (FLOPs / 2; convs and matmuls).

    Elementwise work (sums, attention, BN, pooling) is not counted, as in the papers' figures.
    """
    was_training = module.training
    module.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            module(*example_inputs)
    finally:
        module.train(was_training)
    return int(counter.get_total_flops()) // 2


def pyramid_cost(
    genotype: object,
    in_channels: Sequence[int],
    channels: int,
    repeats: int,
    image_size: int,
    separable: bool = False,
) -> tuple[int, int]:
    """(params, multiply-adds) of a NASFPN neck for a square `image_size` input."""
    from space.pyramid import NASFPN

    neck = NASFPN(genotype, in_channels, channels, repeats, separable)  # type: ignore[arg-type]
    lv0 = neck.genotype.min_level
    feats = [
        torch.zeros(1, c, -(-image_size // 2 ** (lv0 + k)), -(-image_size // 2 ** (lv0 + k)))
        for k, c in enumerate(in_channels)
    ]
    return count_params(neck), count_macs(neck, [feats])
