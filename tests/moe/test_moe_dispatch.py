"""Loop (reference) and fast dispatch give the same outputs and gradients; every expert is touched."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2MLP

from mmoe.moe.config import LoRAConfig
from mmoe.moe.core.context import RoutingContext, RoutingRecords
from mmoe.moe.core.dispatch import GroupedDispatch, LoopDispatch, VariableSplit, grouped_linear, make_dispatch
from mmoe.moe.core.experts import FFNExperts, LoRAExperts
from mmoe.moe.methods.dynmole import DynMoLERouter
from mmoe.moe.methods.moma import ModalityGroups
from mmoe.moe.core.layer import MoEBlock, MoELayer
from mmoe.moe.core.routers import ExpertChoiceRouter, RouterGate, RouterOutput, RoutingPlan, SoftRouter, TopKRouter

DIM, INTER, TOKENS = 32, 48, 40


def dense_mlp() -> nn.Module:
    return Qwen2MLP(Qwen2Config(hidden_size=DIM, intermediate_size=INTER, hidden_act="silu"))


def ffn(num: int) -> FFNExperts:
    return FFNExperts(num_experts=num, hidden=DIM, intermediate=INTER)


def make_router(kind: str, experts: int) -> nn.Module:
    if kind == "top_1":
        return TopKRouter(DIM, experts, top_k=1, init_std=0.5)
    if kind == "top_k":
        return TopKRouter(DIM, experts, top_k=2, init_std=0.5)
    if kind == "top_k_sigmoid":
        return TopKRouter(DIM, experts, top_k=2, score="sigmoid", init_std=0.5)
    if kind == "expert_choice":
        return ExpertChoiceRouter(DIM, experts, capacity_factor=1.5, score="sigmoid", init_std=0.5)
    return SoftRouter(DIM, experts, init_std=0.5)


def make_bank(kind: str, num: int, null: int) -> tuple[nn.Module, nn.Module | None]:
    if kind == "lora":
        base = dense_mlp()
        bank = LoRAExperts.for_mlp(base, LoRAConfig(rank=4, alpha=8), num_experts=num, num_null=null)
        for delta in bank.deltas.values():
            nn.init.normal_(delta.lora_B, std=0.1)
        return bank, base
    return FFNExperts(num_experts=num, hidden=DIM, intermediate=INTER, kind=kind, num_null=null, init_std=0.1), None


def run(layer: MoELayer, base, x: torch.Tensor, dispatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    layer.dispatch = dispatch
    for p in layer.parameters():
        p.grad = None
    x = x.detach().clone().requires_grad_(True)
    y, _ = layer(x, None, base)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y).to(y.dtype)).sum().backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}
    grads["x"] = x.grad.clone()
    return y.detach(), grads


ROUTINGS = [("top_1", 0), ("top_1", 2), ("top_k", 0), ("top_k", 2), ("top_k_sigmoid", 0), ("expert_choice", 0), ("soft", 0)]


@pytest.mark.parametrize("bank_kind", ["glu", "mlp", "lora"])
@pytest.mark.parametrize("router_kind,null", ROUTINGS)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize("lora", ["wide", "sparse"])
def test_loop_and_fast_dispatch_agree(bank_kind, router_kind, null, dtype, tol, lora):
    torch.manual_seed(0)
    bank, base = make_bank(bank_kind, 4, null)
    layer = MoELayer(router=make_router(router_kind, 4 + null), experts=bank, dispatch=LoopDispatch()).to(dtype)
    if base is not None:
        base.to(dtype)
    x = torch.randn(TOKENS, DIM, dtype=dtype)
    y_loop, g_loop = run(layer, base, x, LoopDispatch())
    y_fast, g_fast = run(layer, base, x, GroupedDispatch(lora))
    assert torch.allclose(y_loop.float(), y_fast.float(), atol=tol, rtol=tol)
    assert set(g_loop) == set(g_fast)
    for name in g_loop:
        scale = g_loop[name].float().abs().max().clamp_min(1.0)
        assert torch.allclose(g_loop[name].float(), g_fast[name].float(), atol=tol * scale, rtol=tol), name


class OneExpertRouter(nn.Module):
    """A pluggable router that sends every token to expert 0 (only the contract is used)."""

    def __init__(self, experts: int) -> None:
        super().__init__()
        self.num_experts = experts
        self.gate = RouterGate(DIM, experts)

    def forward(self, x: torch.Tensor, tokens=None) -> RouterOutput:
        logits = self.gate(x)
        idx = torch.zeros(x.shape[0], 1, dtype=torch.long)
        weight = logits.softmax(-1).gather(1, idx)
        return RouterOutput(logits, logits.softmax(-1), RoutingPlan.from_top_k(idx, weight, self.num_experts))


@pytest.mark.parametrize("dispatch", [LoopDispatch(), GroupedDispatch("wide"), GroupedDispatch("sparse")])
@pytest.mark.parametrize("bank_kind", ["glu", "lora"])
def test_every_expert_gets_a_gradient_when_one_is_used(dispatch, bank_kind):
    bank, base = make_bank(bank_kind, 4, 0)
    layer = MoELayer(router=OneExpertRouter(4), experts=bank, dispatch=dispatch)
    y, _ = layer(torch.randn(TOKENS, DIM), None, base)
    y.sum().backward()
    for name, p in bank.named_parameters():
        assert p.grad is not None, name
        # the experts that received no token get exactly zero
        assert p.grad[1:].abs().sum() == 0, name


@pytest.mark.parametrize("dispatch", [LoopDispatch(), GroupedDispatch()])
def test_group_without_tokens_still_touches_its_parameters(dispatch):
    groups = ModalityGroups({
        "text": MoELayer(router=TopKRouter(DIM, 3, top_k=1), experts=ffn(3), dispatch=dispatch),
        "image": MoELayer(router=ExpertChoiceRouter(DIM, 3, score="sigmoid"), experts=ffn(3), dispatch=dispatch),
    })
    block = MoEBlock(core=groups)
    records = RoutingRecords()
    block.routing_context = RoutingContext(torch.ones(2, 5, dtype=torch.bool), torch.zeros(2, 5, dtype=torch.long), None, "forward", records)
    block(torch.randn(2, 5, DIM)).sum().backward()  # all text, no image token
    for name, p in block.named_parameters():
        assert p.grad is not None, name
    stats = records.router_stats({block: "b"})["b"]
    assert stats["image/num_tokens"] == 0 and stats["text/num_tokens"] == 10


def test_grouped_linear_matches_per_group_products():
    x = torch.randn(10, 16, requires_grad=True)
    w = torch.randn(3, 24, 16, requires_grad=True)
    offsets = torch.tensor([4, 4, 10], dtype=torch.int32)
    y = grouped_linear(x, w, offsets)
    ref = torch.cat([x[:4] @ w[0].t(), x[4:] @ w[2].t()])
    assert torch.allclose(y, ref, atol=1e-5)
    y.sum().backward()  # an expanded gradient: the contiguous-grad wrapper makes it legal
    assert w.grad[1].abs().sum() == 0 and w.grad[0].abs().sum() > 0


@pytest.mark.parametrize(
    "top_k,experts,sparse", [(1, 8, True), (2, 8, False), (2, 10, True), (3, 15, True), (3, 14, False), (1, 4, True), (1, 2, True)],
)
def test_fast_dispatch_computes_lora_experts_by_the_cost_rule(top_k, experts, sparse):
    """``fast`` runs only the selected LoRA experts when k <= E / 5 (one per token: E >= 2), and says
    so to cost accounting."""
    fast = make_dispatch("fast")
    assert fast.lora_experts_computed(float(top_k), experts, sorted_rows=top_k == 1) == (top_k if sparse else experts)
    plan = TopKRouter(DIM, experts, top_k=top_k)(torch.randn(TOKENS, DIM)).plan
    assert (fast.lora_rows(plan, experts) is not None) == (sparse and top_k == 1)


def test_sparse_top1_rows_group_every_token_under_its_expert():
    """The permutation path sorts each token under its one expert; null-expert tokens come last, deltaless."""
    router = TopKRouter(DIM, 8 + 2, top_k=1, init_std=0.5)
    plan = router(torch.randn(TOKENS, DIM)).plan
    rows = make_dispatch("sparse").lora_rows(plan, 8)
    counts = torch.bincount(plan.top_idx[:, 0], minlength=10)
    assert torch.equal(torch.diff(rows.offsets, prepend=rows.offsets.new_zeros(1)), counts[:8].int())
    assert rows.num_real_rows == int(counts[:8].sum()) and sorted(rows.order.tolist()) == list(range(TOKENS))
    experts = plan.top_idx[rows.order, 0]
    assert torch.equal(experts, experts.sort().values)


def test_a_variable_plan_splits_into_tokens_routed_to_every_expert_and_the_rest():
    """Hand-made DynMoLE-like mask over 8 experts: token 0 soft (all 8), tokens 1-3 top-p sets of 2, 1, 3."""
    mask = torch.zeros(4, 8, dtype=torch.bool)
    mask[0] = True
    mask[1, [2, 5]] = True
    mask[2, 7] = True
    mask[3, [0, 1, 4]] = True
    split = VariableSplit.of(RoutingPlan.from_mask(mask, torch.full((4, 8), 0.125)), 8)
    assert split.full.tolist() == [0] and split.rest.tolist() == [1, 2, 3]
    assert split.rest_experts_per_token == pytest.approx(2.0)  # (2 + 1 + 3) / 3: the cost rule reads this
    fast = make_dispatch("fast")
    assert fast.lora_experts_computed(2.0, 10, sorted_rows=False) == 2.0  # 2 * 5 <= 10
    assert fast.lora_experts_computed(2.0, 8, sorted_rows=False) == 8.0  # 2 * 5 > 8
    assert fast.lora_experts_computed(1.0, 4, sorted_rows=False) == 4.0  # a mean of one is not one each: 1 * 5 > 4


# (top_p, entropy_threshold, init_std): 8 of 40 tokens soft, the rest 1.06 experts each (fast: split);
# 7 of 40 soft, the rest 2.03 experts each (1 to 4; fast: wide, 2.03 > 8 / 5; sparse: split)
DYNMOLE_PLANS = [(0.8, 0.6, 0.5), (0.9, 0.7, 0.4)]


@pytest.mark.parametrize("top_p, threshold, std", DYNMOLE_PLANS)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize("lora", ["fast", "sparse"])
def test_dynmole_plans_computed_sparsely_equal_the_dense_products(top_p, threshold, std, dtype, tol, lora):
    """A DynMoLE plan (soft tokens + top-p tokens) through the split path gives the wide path's and the
    loop's outputs and gradients, fp32 and bf16."""
    torch.manual_seed(0)
    bank, base = make_bank("lora", 8, 0)
    router = DynMoLERouter(DIM, 8, top_p=top_p, keep_top_k=1, entropy_threshold=threshold, init_std=std)
    layer = MoELayer(router=router, experts=bank, dispatch=LoopDispatch()).to(dtype)
    base.to(dtype)
    x = torch.randn(TOKENS, DIM, dtype=dtype)
    split = VariableSplit.of(router(x).plan, 8)
    assert 0 < split.num_full < TOKENS and split.rest_experts_per_token > 1.0
    y_wide, g_wide = run(layer, base, x, GroupedDispatch("wide"))
    for dispatch in (LoopDispatch(), make_dispatch(lora)):
        y, g = run(layer, base, x, dispatch)
        assert torch.allclose(y.float(), y_wide.float(), atol=tol, rtol=tol)
        assert set(g) == set(g_wide)
        for name in g:
            scale = g_wide[name].float().abs().max().clamp_min(1.0)
            assert torch.allclose(g[name].float(), g_wide[name].float(), atol=tol * scale, rtol=tol), name
