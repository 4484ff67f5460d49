"""Round-5 speed-ups keep the arithmetic: fused Adam where Lightning allows it, siVAE's NB."""

from __future__ import annotations

import torch
from scvi.distributions import NegativeBinomial

from multiviz.models.sivae._module import SIVAEModule
from multiviz.train._lean_plan import fused_flag


class _Trainer:
    def __init__(self, precision: str):
        self.precision = precision


def test_fused_adam_only_where_lightning_can_step_it():
    params = [torch.nn.Parameter(torch.zeros(3))]
    assert fused_flag(params) is True
    assert fused_flag(params, _Trainer("32-true")) is True
    assert fused_flag(params, _Trainer("bf16-mixed")) is True
    # float16 gradient scaling cannot clip before a fused step: torch's default update
    assert fused_flag(params, _Trainer("16-mixed")) is None


def test_fused_and_default_adam_take_the_same_steps():
    torch.manual_seed(0)
    w0 = torch.randn(50, 20)
    grads = [torch.randn(50, 20) for _ in range(20)]
    out = []
    for fused in (None, True):
        w = torch.nn.Parameter(w0.clone())
        opt = torch.optim.Adam([w], lr=1e-2, eps=1e-7, weight_decay=1e-4, fused=fused)
        for g in grads:
            w.grad = g.clone()
            opt.step()
        out.append(w.detach())
    assert torch.allclose(out[0], out[1], rtol=0, atol=1e-6)


def test_sivae_nb_log_prob_equals_scvi_negative_binomial():
    torch.manual_seed(0)
    module = SIVAEModule(30, 8, likelihood="nb", n_hidden=(16,))
    with torch.no_grad():
        module.px_r.normal_()
    x = torch.poisson(torch.full((12, 30), 2.0))
    mu = torch.rand(12, 30) * 5
    theta = torch.exp(module.px_r)
    expected = NegativeBinomial(mu=mu + 1e-8, theta=theta.expand_as(mu)).log_prob(x)
    got = module.reconstruction_log_prob(x, {"mu": mu})
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-5)
    # the dispersion's gradient is the same as through the broadcast distribution
    module.px_r.grad = None
    module.reconstruction_log_prob(x, {"mu": mu}).sum().backward()
    g_new = module.px_r.grad.clone()
    module.px_r.grad = None
    theta = torch.exp(module.px_r)
    NegativeBinomial(mu=mu + 1e-8, theta=theta.expand_as(mu)).log_prob(x).sum().backward()
    assert torch.allclose(g_new, module.px_r.grad, rtol=1e-5, atol=1e-4)
