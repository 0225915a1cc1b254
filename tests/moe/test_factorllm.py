"""FactorLLM: a dense FFN split into experts (all active = the dense FFN), the E/k router and the
prior-approximate loss against the frozen dense teacher."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mmoe.config import ConfigError
from mmoe.moe.config import MoEConfig
from mmoe.moe.factorllm_speed import DenseFFN as Dense
from mmoe.moe.core.dispatch import make_dispatch
from mmoe.moe.integration.build import build_block
from mmoe.moe.methods.factorllm import FactorLLMBalanceLoss, FactorLLMLayer, FactorLLMRouter, clipped_kl, split_ffn
from tests.moe.helpers import recipe

FIXTURES = Path(__file__).parent / "fixtures"


def factorllm_cfg(experts: int, top_k: int, grouping: str = "contiguous", dispatch: str = "fast") -> MoEConfig:
    return MoEConfig.model_validate({
        "experts": {"type": "ffn", "num_experts": experts, "ffn": {"init": "split"}},
        "router": {"type": "top_k", "top_k": top_k},
        "factorllm": {"grouping": grouping},
        "dispatch": dispatch,
    })


@pytest.mark.parametrize("grouping", ["contiguous", "permuted"])
@pytest.mark.parametrize("dispatch", ["fast", "loop"])
def test_with_every_expert_active_the_split_equals_the_dense_ffn(grouping, dispatch):
    dense = Dense(32, 64)
    block = build_block(dense, factorllm_cfg(8, 8, grouping, dispatch)).eval()
    x = torch.randn(3, 5, 32)
    assert torch.allclose(block(x), dense(x), atol=1e-6, rtol=0)


def test_a_token_uses_its_top_k_experts_with_the_hard_weight_e_over_k():
    dense = Dense(4, 8)
    bank = split_ffn(dense, num_experts=4)
    router = FactorLLMRouter(4, 4, top_k=2)
    with torch.no_grad():
        router.gate.weight.zero_()
        router.gate.bias.copy_(torch.tensor([0.0, 3.0, 1.0, 2.0]))  # every token: experts 1 and 3
    layer = FactorLLMLayer(router=router, experts=bank, dispatch=make_dispatch("fast"), teacher=dense, prior_approx=0.0)
    x = torch.randn(5, 4)
    y, routed = layer(x, None)
    assert routed[""].out.plan.combine[0].tolist() == [0.0, 2.0, 0.0, 2.0]
    assert torch.allclose(y, 2.0 * (bank.expert(1, x) + bank.expert(3, x)), atol=1e-6)
    # expert e is neurons [2e, 2e + 2) of the dense FFN
    part = dense.down_proj.weight[:, 2:4] @ (nn.functional.silu(dense.gate_proj.weight[2:4] @ x.T) * (dense.up_proj.weight[2:4] @ x.T))
    assert torch.allclose(bank.expert(1, x), part.T, atol=1e-6)


def test_prior_approximate_loss_pulls_the_router_to_the_experts_that_best_approximate_the_teacher():
    """4 experts, k = 2: experts 0 and 1 each carry half of the teacher (exactly t * k / E), 2 and 3 nothing."""
    dense = Dense(3, 4)
    with torch.no_grad():
        dense.gate_proj.weight[1] = dense.gate_proj.weight[0]
        dense.up_proj.weight[1] = dense.up_proj.weight[0]
        dense.down_proj.weight[:, 1] = dense.down_proj.weight[:, 0]
        dense.down_proj.weight[:, 2:] = 0
    router = FactorLLMRouter(3, 4, top_k=2)
    with torch.no_grad():
        router.gate.weight.zero_()
        router.gate.bias.copy_(torch.tensor([0.0, 1.0, 2.0, 0.5]))
    layer = FactorLLMLayer(router=router, experts=split_ffn(dense, num_experts=4), dispatch=make_dispatch("fast"), teacher=dense, prior_approx=0.05)
    x = torch.randn(6, 3)
    e = math.e
    target = torch.tensor([e, e, 1.0, 1.0]) / (2 * e + 2)  # softmax of the one-hot Y = [1, 1, 0, 0]
    assert torch.allclose(layer.pseudo_labels(x), target.expand(6, 4), atol=1e-6)
    p = torch.tensor([0.0, 1.0, 2.0, 0.5]).softmax(-1)
    expected = float((p * (p / target).log()).sum())
    layer.train()
    _, routed = layer(x, None)
    assert routed[""].out.aux_losses["factorllm_prior_approx"].item() == pytest.approx(0.05 * expected, rel=1e-5)
    routed[""].out.aux_losses["factorllm_prior_approx"].backward()
    with torch.no_grad():  # a gradient step moves the router's mass toward experts 0 and 1
        router.gate.bias.sub_(10.0 * router.gate.bias.grad)
    after = router(x).scores[0]
    assert after[:2].sum() > p[:2].sum() + 0.05


def test_balance_term_is_the_mean_of_the_chosen_experts_probabilities():
    router = FactorLLMRouter(2, 3, top_k=1)
    with torch.no_grad():
        router.gate.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        router.gate.bias.zero_()
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    out = router(x)
    p0 = torch.tensor([2.0, 0.0, 0.0]).softmax(-1)[0]
    p1 = torch.tensor([0.0, 1.0, 0.0]).softmax(-1)[1]
    assert FactorLLMBalanceLoss(1.0)(out).item() == pytest.approx(float(p0 + p1) / 6, rel=1e-6)


def test_matches_the_released_factorllm_layer():
    ref = json.loads((FIXTURES / "factorllm_reference.json").read_text())  # zhenwuweihe/FactorLLM@8094dc4, see _comment
    t = lambda v: torch.tensor(v)
    dense = Dense(16, 8)
    with torch.no_grad():
        dense.gate_proj.weight.copy_(t(ref["dense"]["gate"]))
        dense.up_proj.weight.copy_(t(ref["dense"]["up"]))
        dense.down_proj.weight.copy_(t(ref["dense"]["down"]))
    bank = split_ffn(dense, num_experts=4)
    with torch.no_grad():  # the reference's students after perturbation
        bank.gate_proj.copy_(t(ref["student"]["gate"]))
        bank.up_proj.copy_(t(ref["student"]["up"]))
        bank.down_proj.copy_(t(ref["student"]["down"]))
    router = FactorLLMRouter(16, 4, top_k=2)
    with torch.no_grad():
        router.gate.weight.copy_(t(ref["router"]["weight"]))
        router.gate.bias.copy_(t(ref["router"]["bias"]))
    layer = FactorLLMLayer(router=router, experts=bank, dispatch=make_dispatch("loop"), teacher=dense, prior_approx=1.0).train()
    x = t(ref["x"])
    y, routed = layer(x, None)
    out = routed[""].out
    assert torch.allclose(y, t(ref["output"]), atol=1e-5)
    assert torch.allclose(dense(x), t(ref["teacher"]), atol=1e-6)
    assert out.aux_losses["factorllm_prior_approx"].item() == pytest.approx(ref["prior_approx_loss"], rel=1e-5)
    assert FactorLLMBalanceLoss(1.0)(out).item() == pytest.approx(ref["balance_loss"], rel=1e-6)


def test_clipped_kl_is_the_released_distill_loss():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    q = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    c = 1e-7
    row0 = 1 * math.log(1 / 0.5) + c * math.log(c / 0.5)
    row1 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert clipped_kl(p, q).item() == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_the_teacher_stays_in_the_llm_group_and_out_of_the_inference_cost():
    from mmoe.model.parts import parameter_groups
    from mmoe.moe.cost import moe_costs
    from tests.moe.helpers import tiny_model

    model = tiny_model("methods/factorllm")
    groups = parameter_groups(model)
    teacher = [n for n in groups if ".core.teacher." in n]
    assert teacher and {groups[n] for n in teacher} == {"llm"}
    assert {groups[n] for n in groups if ".core.experts." in n} == {"experts"}
    per_expert = 3 * 128 * 32  # 256 neurons / 8 experts
    assert all(row.computed_params == 2 * per_expert + row.router_params for row in moe_costs(model))


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["model.moe.factorllm=null"], "init=split is FactorLLM"),
        (["model.moe.experts.ffn.init=upcycle"], "ffn.init=split"),
        (["model.moe.experts.num_null_experts=2"], "null experts"),
        (["model.moe.router.renormalize=true"], "hard weights"),
    ],
)
def test_factorllm_config_errors_say_why(overrides, match):
    with pytest.raises(ConfigError, match=match):
        recipe("methods/factorllm", *overrides)


def test_speed_measurement_reports_both_timings_and_their_ratio(capsys):
    from mmoe.moe.factorllm_speed import main

    assert main(["--hidden", "32", "--intermediate", "64", "--experts", "8", "--top-k", "2", "--tokens", "16", "--repeats", "2"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["experts"] == 8 and got["top_k"] == 2 and got["dense_ms"] > 0 and got["factorllm_ms"] > 0
    assert got["speedup"] == pytest.approx(got["dense_ms"] / got["factorllm_ms"])
