"""The fused focal loss against torchvision's, in float64 (same function) and float32."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from proxy_task.focal import sigmoid_focal_loss_sum, softplus_pair


def _case(n: int = 400, k: int = 6, scale: float = 4.0, seed: int = 0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=gen, dtype=dtype) * scale
    logits[0, :] = torch.tensor([-60.0, -25.0, -1e-3, 0.0, 25.0, 60.0], dtype=dtype)[:k]  # both softplus branches
    targets = (torch.rand(n, k, generator=gen) < 0.05).to(dtype)
    targets[0, ::2] = 1.0
    return logits, targets


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 1.5), (0.25, 2.0), (0.5, 0.0), (-1.0, 1.5)])
def test_value_and_gradient_equal_torchvision_in_float64(alpha, gamma):
    logits, targets = _case()
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    ours = sigmoid_focal_loss_sum(a, targets, alpha, gamma)
    ref = sigmoid_focal_loss(b, targets, alpha, gamma, "sum")
    (3.0 * ours).backward()  # a non-unit upstream gradient is applied
    (3.0 * ref).backward()
    assert ours.item() == pytest.approx(ref.item(), rel=1e-12)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)


def test_gradient_passes_gradcheck():
    logits, targets = _case(n=12, scale=2.0)
    x = logits.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: sigmoid_focal_loss_sum(t, targets, 0.25, 1.5), (x,))


def test_float32_differs_from_torchvision_by_rounding_only():
    for seed in range(3):
        logits, targets = _case(n=5000, seed=seed, dtype=torch.float32)
        a = logits.clone().requires_grad_()
        b = logits.clone().requires_grad_()
        ours, ref = sigmoid_focal_loss_sum(a, targets, 0.25, 1.5), sigmoid_focal_loss(b, targets, 0.25, 1.5, "sum")
        ours.backward()
        ref.backward()
        assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_empty_input_and_shape_mismatch():
    x = torch.zeros(0, 6, requires_grad=True)
    loss = sigmoid_focal_loss_sum(x, torch.zeros(0, 6), 0.25, 1.5)
    loss.backward()
    assert loss.item() == 0.0 and x.grad.shape == (0, 6)
    with pytest.raises(ValueError, match="differ in shape"):
        sigmoid_focal_loss_sum(torch.zeros(3, 6), torch.zeros(3, 5), 0.25, 1.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softplus_pair_is_within_a_few_ulp_of_exact(dtype):
    # both softplus branches, |z| where 1 + exp(-|z|) rounds to 1 (> 16.6 in float32), 0, tiny
    z = torch.cat([torch.linspace(-120, 120, 20001, dtype=torch.float64), torch.tensor([0.0, 1e-30, -1e-30, 1e-7])])
    z = z.to(dtype)  # the reference takes the same (rounded) inputs
    neg, pos = softplus_pair(z)
    z = z.double()
    # float64 with the scalar log1p: the reference (F.softplus returns z itself beyond z = 20)
    tail = torch.log1p(torch.exp(-z.abs()))
    exact_neg, exact_pos = (-z).clamp(min=0) + tail, z.clamp(min=0) + tail
    eps, tiny = torch.finfo(dtype).eps, torch.finfo(dtype).tiny  # below tiny: underflow, as F.softplus
    for ours, exact in ((neg, exact_neg), (pos, exact_pos)):
        err = (ours.double() - exact).abs()
        assert (err <= 4 * eps * exact + tiny).all()  # max 2.0 eps measured here; other CPUs round exp, log otherwise
    assert neg.dtype == pos.dtype == dtype
