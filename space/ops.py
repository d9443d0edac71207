"""The parameter-free pieces of a merging cell: resampling and the two binary ops.

Sizes: a level-l feature of an H x W image is ceil(H / 2^l) x ceil(W / 2^l) (what
stride-2 convs with padding 1 and TF "SAME" pooling give). Going down d levels is a
max pool with kernel = stride = 2^d and TF "SAME" padding (output ceil(n / 2^d), padding
split floor/ceil before/after, as the official MaxPool2D(padding='same')); ceil of ceil
is consistent, so pooling always lands on the target size. Going up d levels is
nearest-neighbour upsampling by 2^d, then a crop to the target size (the official
code only supports multiples of 2^max_level; the crop extends it to any size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _same_pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    # (N, C, H, W) -> (N, C, ceil(H/s), ceil(W/s))
    h, w = x.shape[-2:]
    pad_h = -h % stride
    pad_w = -w % stride
    if pad_h or pad_w:
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=float("-inf"))
    return F.max_pool2d(x, kernel_size=stride, stride=stride)


def resample(x: torch.Tensor, from_level: int, to_level: int, size: tuple[int, int]) -> torch.Tensor:
    """Bring x (N, C, h, w) at `from_level` to `to_level`, of spatial `size` (H, W)."""
    if from_level < to_level:
        return _same_pool(x, 2 ** (to_level - from_level))
    if from_level > to_level:
        scale = 2 ** (from_level - to_level)
        x = F.interpolate(x, scale_factor=scale, mode="nearest")
        return x[..., : size[0], : size[1]]
    return x


def global_attention(coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
    """out = c + f * sigmoid(max over H, W of c), per channel. (N, C, H, W) x2 -> (N, C, H, W)."""
    return coarse + fine * torch.sigmoid(torch.amax(coarse, dim=(2, 3), keepdim=True))


def combine(op: str, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Apply a cell op; for attention `first` is the coarse input (see space.expansion)."""
    if op == "sum":
        return first + second
    if op == "attention":
        return global_attention(first, second)
    raise ValueError(f"unknown op {op!r}")
