"""The pyramid module built from a genotype: one loop over `expand(genotype)`.

Structure (official tensorflow/tpu and tensorflow/models `nasfpn.py`):
  * backbone features C_l whose width differs from C get a 1x1 conv (with bias) + BN;
    levels above the backbone's are made by stride-2 max pooling of the level below;
  * each repeat is one `PyramidNetwork`; weights are not shared between repeats;
  * every cell: resample both inputs to its level, combine (sum | attention), add the
    unconnected features (output cells), then ReLU -> 3x3 conv (with bias) -> BN
    [-> DropBlock]. NAS-FPNLite: depthwise 3x3 + pointwise 1x1 instead of the 3x3 conv.
Conv weights use the official initialiser (variance scaling 2.0, fan_out, normal).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.ops import drop_block2d

from space.expansion import expand, output_indices
from space.genotype import Genotype
from space.ops import combine, resample


def _conv(channels: int, separable: bool) -> nn.Module:
    if not separable:
        return nn.Conv2d(channels, channels, 3, padding=1)
    # Keras SeparableConv2D: depthwise without bias, pointwise with bias.
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.Conv2d(channels, channels, 1),
    )


class DropBlock(nn.Module):
    """torchvision's DropBlock with the block clamped to the largest odd size that fits
    (torchvision rejects an even clamp, which small coarse maps such as 2x2 would give)."""

    def __init__(self, p: float, block_size: int):
        super().__init__()
        self.p, self.block_size = p, block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = min(self.block_size, x.shape[-2], x.shape[-1])
        size -= 1 - size % 2
        return drop_block2d(x, self.p, size, training=self.training)


class PostOp(nn.Sequential):
    """ReLU -> 3x3 conv (or separable) -> BN [-> DropBlock]; keeps (N, C, H, W)."""

    def __init__(self, channels: int, separable: bool = False, dropblock_prob: float = 0.0, dropblock_size: int = 3):
        layers: list[nn.Module] = [nn.ReLU(), _conv(channels, separable), nn.BatchNorm2d(channels)]
        if dropblock_prob > 0:
            layers.append(DropBlock(dropblock_prob, dropblock_size))
        super().__init__(*layers)


class PyramidNetwork(nn.Module):
    """One repeat: L features at levels min..max (width C) -> L features at the same levels."""

    def __init__(
        self,
        genotype: Genotype,
        channels: int,
        separable: bool = False,
        dropblock_prob: float = 0.0,
        dropblock_size: int = 3,
    ):
        super().__init__()
        self.genotype = genotype
        self.nodes = expand(genotype)
        self.pool_levels = genotype.pool_levels()
        self.outputs = [output_indices(genotype)[lv] for lv in genotype.levels]
        self.post_ops = nn.ModuleList(PostOp(channels, separable, dropblock_prob, dropblock_size) for _ in self.nodes)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """feats[l]: (N, C, H_l, W_l) for levels min..max -> same shapes, same order."""
        n_in = self.genotype.num_levels
        if len(feats) != n_in:
            raise ValueError(f"expected {n_in} input features, got {len(feats)}")
        pool = list(feats)
        sizes = [tuple(f.shape[-2:]) for f in feats]  # size of each level, by level index
        lv0 = self.genotype.min_level
        for node, post_op in zip(self.nodes, self.post_ops):
            size = sizes[node.level - lv0]
            a = resample(pool[node.first], self.pool_levels[node.first], node.level, size)
            b = resample(pool[node.second], self.pool_levels[node.second], node.level, size)
            x = combine(node.op, a, b)
            for e in node.extras:  # unconnected features, already at this level
                x = x + pool[e]
            pool.append(post_op(x))
        return [pool[i] for i in self.outputs]


class NASFPN(nn.Module):
    """Backbone features -> P_min..P_max, through `repeats` stacked pyramid networks (N@C).

    Args:
        genotype: the architecture of every repeat.
        in_channels: widths of the backbone features at levels min_level, min_level+1, ...
        channels: the pyramid width C.
        repeats: N, the number of stacked pyramid networks (weights not shared).
        separable: NAS-FPNLite separable convs.
        dropblock_prob, dropblock_size: DropBlock after every cell's BN (0 = off).
    """

    def __init__(
        self,
        genotype: Genotype,
        in_channels: Sequence[int],
        channels: int = 256,
        repeats: int = 1,
        separable: bool = False,
        dropblock_prob: float = 0.0,
        dropblock_size: int = 3,
    ):
        super().__init__()
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        if not 1 <= len(in_channels) <= genotype.num_levels:
            raise ValueError(f"expected 1..{genotype.num_levels} backbone widths, got {list(in_channels)}")
        self.genotype = genotype
        self.out_channels = channels
        self.projections = nn.ModuleList(
            nn.Identity() if c == channels else nn.Sequential(nn.Conv2d(c, channels, 1), nn.BatchNorm2d(channels))
            for c in in_channels
        )
        self.repeats = nn.ModuleList(
            PyramidNetwork(genotype, channels, separable, dropblock_prob, dropblock_size) for _ in range(repeats)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # official: VarianceScaling(2.0, fan_out, normal)
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _inputs(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(feats) != len(self.projections):
            raise ValueError(f"expected {len(self.projections)} backbone features, got {len(feats)}")
        out = [proj(f) for proj, f in zip(self.projections, feats)]
        while len(out) < self.genotype.num_levels:  # P6, P7: stride-2 max pool of the level below
            prev = out[-1]
            size = (-(-prev.shape[-2] // 2), -(-prev.shape[-1] // 2))
            out.append(resample(prev, 0, 1, size))
        return out

    def forward_all(self, feats: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Outputs of every repeat (for anytime detection): repeats x [P_min..P_max]."""
        x = self._inputs(feats)
        outs = []
        for net in self.repeats:
            x = net(x)
            outs.append(x)
        return outs

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Backbone features (N, C_l, H_l, W_l) -> [P_min..P_max], each (N, C, H_l, W_l)."""
        return self.forward_all(feats)[-1]
