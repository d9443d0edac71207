"""Pyramid builder: ops on hand-computed tensors, resampling, shapes, parameter count."""

import pytest
import torch

from space import load_builtin, make_genotype
from space.complexity import count_params, pyramid_cost
from space.ops import combine, global_attention, resample
from space.pyramid import NASFPN, PyramidNetwork


def test_attention_on_hand_computed_tensors():
    c = torch.tensor([[[[0.0, 2.0], [-1.0, 1.0]], [[-3.0, -4.0], [-5.0, -6.0]]]])  # (1, 2, 2, 2)
    f = torch.ones(1, 2, 2, 2)
    out = global_attention(c, f)
    # channel 0: max 2 -> sigmoid(2) = 0.880797; channel 1: max -3 -> sigmoid(-3) = 0.047426
    assert torch.allclose(out[0, 0], c[0, 0] + 0.8807970779778823, atol=1e-6)
    assert torch.allclose(out[0, 1], c[0, 1] + 0.04742587317756678, atol=1e-6)
    assert torch.equal(combine("sum", c, f), c + f)


def test_attention_roles_and_tie_rule_in_the_builder():
    # A cell at level 4 reading P4 (index 1) and P6 (index 3): P6 is coarser, it plays c.
    specs = [(4, "attention", (1, 3), False), (4, "attention", (5, 1), False)]
    outs = [(3, "sum", (0, 6), True), (4, "sum", (6, 7), True), (5, "sum", (2, 8), True),
            (7, "sum", (4, 9), True), (6, "sum", (3, 10), True)]  # fmt: skip
    net = PyramidNetwork(make_genotype(specs + outs), channels=1)
    captured = []
    net.post_ops[0].register_forward_hook(lambda m, i, o: captured.append(i[0].clone()))
    net.post_ops[1].register_forward_hook(lambda m, i, o: captured.append(i[0].clone()))
    sizes = [8, 4, 2, 1, 1]
    feats = [torch.full((2, 1, s, s), float(k + 1)) for k, s in enumerate(sizes)]  # P_l filled with l-2
    net.eval()
    with torch.no_grad():
        net(feats)
    p6_up = 4.0  # c = upsampled P6 (value 4), f = P4 (value 2)
    assert torch.allclose(
        captured[0], torch.full((2, 1, 4, 4), p6_up + 2.0 * torch.sigmoid(torch.tensor(p6_up)).item())
    )
    # tie (both level 4): sorted pair (1, 5) -> index 1 (P4, value 2) plays c
    n5 = net.post_ops[0](captured[0])
    expected = 2.0 + n5 * torch.sigmoid(torch.tensor(2.0))
    assert torch.allclose(captured[1], expected, atol=1e-6)


@pytest.mark.parametrize("n", [1, 5, 7, 8, 13, 100])
def test_resample_sizes_follow_ceil_rule(n):
    size = lambda lv: -(-n // 2**lv)  # noqa: E731
    x3 = torch.randn(1, 2, size(3), size(3))
    for to in range(4, 8):
        assert resample(x3, 3, to, (size(to), size(to))).shape[-2:] == (size(to), size(to))
    x7 = torch.randn(1, 2, size(7), size(7))
    for to in range(3, 7):
        assert resample(x7, 7, to, (size(to), size(to))).shape[-2:] == (size(to), size(to))


def test_same_pool_pads_like_tensorflow():
    x = torch.arange(5.0).view(1, 1, 1, 5)  # width 5, stride 4: pad 3 = 1 before, 2 after
    out = resample(x, 3, 5, (1, 2))
    assert out.flatten().tolist() == [2.0, 4.0]  # windows [-inf,0,1,2] and [3,4,-inf,-inf]


def test_upsample_is_nearest_then_crop():
    x = torch.tensor([[[[1.0, 2.0]]]])
    assert resample(x, 4, 3, (1, 3)).flatten().tolist() == [1.0, 1.0, 2.0]


@pytest.mark.parametrize("image", [64, 100, 129])
@pytest.mark.parametrize("repeats", [1, 3])
def test_builder_output_shapes(image, repeats):
    g = load_builtin("nasfpn_paper")
    neck = NASFPN(g, [8, 16, 32], channels=12, repeats=repeats)
    feats = [torch.randn(2, c, -(-image // 2**lv), -(-image // 2**lv)) for c, lv in zip([8, 16, 32], [3, 4, 5])]
    all_outs = neck.forward_all(feats)
    assert len(all_outs) == repeats
    for outs in all_outs:
        assert [tuple(o.shape) for o in outs] == [(2, 12, -(-image // 2**lv), -(-image // 2**lv)) for lv in range(3, 8)]


def test_separable_dropblock_channels_last():
    g = load_builtin("fpn")
    neck = NASFPN(g, [16, 16, 16], channels=16, repeats=2, separable=True, dropblock_prob=0.1, dropblock_size=3)
    feats = [torch.randn(2, 16, s, s).to(memory_format=torch.channels_last) for s in (16, 8, 4)]
    outs = neck(feats)
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2, 1]
    outs[0].sum().backward()
    # depthwise 16*9 + pointwise 16*16+16 + BN 32 per cell; no projections (widths equal)
    assert count_params(neck) == 2 * 5 * (16 * 9 + 16 * 16 + 16 + 32)


def test_paper_parameter_count_at_7x256_on_resnet50():
    # Derivation from the official structure (convs have biases, BN has gamma and beta):
    #   projections C3..C5 -> 256: (512 + 1024 + 2048) * 256 + 3 * 256 (conv) + 3 * 512 (BN)
    #                            = 917,504 + 768 + 1,536 = 919,808
    #   one cell: 3x3 conv 256 -> 256: 9 * 256 * 256 + 256 = 590,080; BN 512 -> 590,592
    #   7 repeats x 7 cells: 49 * 590,592 = 28,939,008
    #   total 29,858,816
    g = load_builtin("nasfpn_paper")
    assert count_params(NASFPN(g, [512, 1024, 2048], 256, 7)) == 919_808 + 49 * 590_592 == 29_858_816


def test_multiply_adds_of_one_cell_by_hand():
    # FPN baseline, 1 repeat, width 8, input 64: cells at levels 7,6,5,4,3 (sizes 1,1,2,4,8),
    # each 3x3 conv costs H*W*8*8*9 MACs; input widths equal C so no projection.
    params, macs = pyramid_cost(load_builtin("fpn"), [8, 8, 8], 8, 1, 64)
    assert macs == sum(s * s * 8 * 8 * 9 for s in (1, 1, 2, 4, 8))
    assert params == 5 * (8 * 8 * 9 + 8 + 16)
