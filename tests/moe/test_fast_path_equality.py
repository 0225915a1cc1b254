"""Every fast path against its reference: outputs and gradients (inputs, expert weights, router
weights), fp32 and bf16, on uneven expert loads with one real expert that gets no token.

fp32: the fast path equals the loop reference to 1e-5 of each tensor's largest entry.

bf16: both runs start from the same bf16-representable weights and inputs, so the float32 router
makes the same decisions as an fp32 run of the reference on those values (the reference figure).
bf16 keeps 8 significant bits (unit roundoff u = 2**-8) and every op rounds its output, so neither
path matches fp32 exactly; the bound is what bf16 costs the reference itself: the fast path's error
against fp32, relative to the tensor's largest entry, is at most twice the bf16 loop's plus 2u
(products grouped or summed in another order round differently), and never above 4 %.
"""

from __future__ import annotations

import copy
from typing import Callable

import pytest
import torch
from torch import nn
from transformers import Qwen2Config
from transformers.models.qwen2.modeling_qwen2 import Qwen2MLP

from mmoe.moe.config import LoRAConfig, ParrotConfig
from mmoe.moe.core.context import RoutingContext
from mmoe.moe.core.dispatch import (
    LoopDispatch,
    VariableSplit,
    _grouped_mm_runs,
    grouped_linear,
    make_dispatch,
    permute_rows,
    sparse_lora_pays,
)
from mmoe.moe.core.experts import FFNExperts, LoRAExperts
from mmoe.moe.core.layer import MoEBlock, MoELayer
from mmoe.moe.core.routers import ExpertChoiceRouter, RouterGate, SoftRouter, TopKRouter
from mmoe.moe.factorllm_speed import DenseFFN
from mmoe.moe.methods.adamoe import AdaMoERouter
from mmoe.moe.methods.dynmole import DynMoLERouter
from mmoe.moe.methods.factorllm import FactorLLMLayer, FactorLLMRouter, split_ffn
from mmoe.moe.methods.gw import GWBroadcastRouter
from mmoe.moe.methods.moma import ModalityGroups
from mmoe.moe.methods.mor import MixtureOfRouters
from mmoe.moe.methods.parrot import ParrotProjector, PromptContext

DIM, INTER, TOKENS, RANK, EXPERTS = 32, 48, 45, 8, 8
SEQS = 5  # TOKENS as 5 sequences (or images) of 9
FP32_TOL = 1e-5
BF16_U = 2.0**-8
BF16_CAP = 0.04
# router logit offsets through the constant input feature: experts 0-2 take most tokens, the last
# real expert none (it can still be reached by soft, broadcast or expert-choice routing)
OFFSET = [2.0, 1.5, 1.0, 0.0, 0.0, -0.5, -1.0, -20.0]
NULL_OFFSET = [1.0, 0.5]


def skew(gate: RouterGate | nn.Module, offsets: list[float]) -> None:
    """Column 0 of the gate (the input's constant feature) biases each expert's logit by ``offsets``."""
    with torch.no_grad():
        rows = gate.weight.shape[0]
        gate.weight[:, 0] = torch.tensor(offsets).repeat(rows // len(offsets))


def make_router(kind: str, null: int) -> nn.Module:
    routable = EXPERTS + null
    offsets = OFFSET + NULL_OFFSET[:null]
    if kind == "mor":
        router = MixtureOfRouters(DIM, routable, num_routers=2, top_k=2, init_std=0.5)
        skew(router.gate, offsets)
        return router
    if kind == "gw":
        main = TopKRouter(DIM, routable, top_k=1, init_std=0.3)
        skew(main.gate, offsets)
        return GWBroadcastRouter(main=main, threshold=0.45)
    router = {
        "top_1": lambda: TopKRouter(DIM, routable, top_k=1, init_std=0.5),
        "top_2": lambda: TopKRouter(DIM, routable, top_k=2, renormalize=True, init_std=0.5),
        "top_2_sigmoid": lambda: TopKRouter(DIM, routable, top_k=2, score="sigmoid", init_std=0.5),
        "adamoe": lambda: AdaMoERouter(DIM, routable, num_real=EXPERTS, top_k=2, init_std=0.5),
        "expert_choice": lambda: ExpertChoiceRouter(DIM, routable, capacity_factor=1.5, score="sigmoid", init_std=0.5),
        "soft": lambda: SoftRouter(DIM, routable, init_std=0.5),
        "dynmole": lambda: DynMoLERouter(DIM, routable, top_p=0.8, keep_top_k=1, entropy_threshold=0.45, init_std=0.3),
    }[kind]()
    skew(router.gate, offsets)
    return router


def tokens_in(dtype: torch.dtype = torch.float32, seed: int = 1) -> torch.Tensor:
    x = torch.randn(TOKENS, DIM, generator=torch.Generator().manual_seed(seed))
    x[:, 0] = 3.0  # the constant feature the skewed gates read
    return x.to(dtype)


class LoRACase(nn.Module):
    """A MoLE layer and the frozen MLP it adapts."""

    def __init__(self, router: nn.Module, null: int, rank: int = RANK) -> None:
        super().__init__()
        self.base = Qwen2MLP(Qwen2Config(hidden_size=DIM, intermediate_size=INTER, hidden_act="silu")).requires_grad_(False)
        bank = LoRAExperts.for_mlp(self.base, LoRAConfig(rank=rank, alpha=2 * rank), num_experts=EXPERTS, num_null=null)
        for delta in bank.deltas.values():
            nn.init.normal_(delta.lora_B, std=0.1)
        self.layer = MoELayer(router=router, experts=bank, dispatch=LoopDispatch())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, None, self.base)[0]


class FFNCase(nn.Module):
    """An FFN expert layer: gated (``glu``) or two-linear (``mlp``) experts."""

    def __init__(self, router: nn.Module, null: int, kind: str = "glu", intermediate: int = INTER) -> None:
        super().__init__()
        bank = FFNExperts(num_experts=EXPERTS, hidden=DIM, intermediate=intermediate, kind=kind, num_null=null, init_std=0.1)
        self.layer = MoELayer(router=router, experts=bank, dispatch=LoopDispatch())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, None)[0]


class GroupsCase(nn.Module):
    """MoMa's modality groups: top-2 text experts, expert-choice image experts, in one block."""

    def __init__(self) -> None:
        super().__init__()
        text, image = TopKRouter(DIM, 4, top_k=2, init_std=0.5), ExpertChoiceRouter(DIM, 4, score="sigmoid", init_std=0.5)
        skew(text.gate, [1.0, 0.5, 0.0, -20.0])
        skew(image.gate, [1.0, 0.5, 0.0, -1.0])
        self.block = MoEBlock(core=ModalityGroups({
            "text": MoELayer(router=text, experts=FFNExperts(num_experts=4, hidden=DIM, intermediate=INTER, init_std=0.1), dispatch=LoopDispatch()),
            "image": MoELayer(router=image, experts=FFNExperts(num_experts=4, hidden=DIM, intermediate=INTER, init_std=0.1), dispatch=LoopDispatch()),
        }))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modality = torch.zeros(SEQS, TOKENS // SEQS, dtype=torch.long)
        modality[:, 3:7] = 1  # a few image tokens per sequence
        self.block.routing_context = RoutingContext(torch.ones_like(modality, dtype=torch.bool), modality, None, "forward", None)
        return self.block(x.view(SEQS, TOKENS // SEQS, DIM)).reshape(TOKENS, DIM)


class ParrotCase(nn.Module):
    """Parrot's projector on 5 images of 9 tokens (one routing per image, repeated over its tokens)."""

    def __init__(self, top_k: int | None) -> None:
        super().__init__()
        layers = nn.Sequential(nn.Linear(DIM, DIM), nn.GELU(), nn.Linear(DIM, DIM))
        self.projector = ParrotProjector(mlp_layers=layers, cfg=ParrotConfig(num_experts=4, top_k=top_k, init_std=0.3), width=DIM)
        self.projector.dispatch = LoopDispatch()
        generator = torch.Generator().manual_seed(2)
        self.embeds = torch.randn(2, 6, DIM, generator=generator)
        self.mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.bool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prompt = PromptContext(self.embeds.to(x.dtype), self.mask, torch.tensor([0, 0, 1, 1, 1]))
        return self.projector(x.view(SEQS, TOKENS // SEQS, DIM), prompt).reshape(TOKENS, DIM)


class FactorLLMCase(nn.Module):
    """FactorLLM in training: the dense FFN split into 4 experts, top-2 with weight E/k."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        dense = DenseFFN(DIM, 64).requires_grad_(False)
        router = FactorLLMRouter(DIM, 4, top_k=2)
        skew(router.gate, [1.0, 0.5, 0.0, -20.0])
        self.layer = FactorLLMLayer(router=router, experts=split_ffn(dense, num_experts=4), dispatch=LoopDispatch(), teacher=dense, prior_approx=0.05)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, None)[0]


def set_dispatch(module: nn.Module, dispatch) -> None:
    for m in module.modules():
        if hasattr(m, "dispatch"):
            m.dispatch = dispatch


def outputs_and_grads(module: nn.Module, x: torch.Tensor, dispatch) -> dict[str, torch.Tensor]:
    """The output and every gradient (input, experts, routers) of a fixed weighted sum of the output."""
    set_dispatch(module, dispatch)
    module.train()
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = module(x)
    (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    got = {"y": y.detach().float(), "x.grad": x.grad.float()}
    got |= {f"{n}.grad": p.grad.float() for n, p in module.named_parameters() if p.grad is not None}
    return got


def relative_errors(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> dict[str, float]:
    assert set(got) == set(want)
    return {k: float((got[k] - want[k]).abs().max() / want[k].abs().max().clamp_min(1e-6)) for k in want}


def check_fp32(make: Callable[[], nn.Module], dispatch: str) -> None:
    torch.manual_seed(0)
    module = make()
    x = tokens_in()
    errors = relative_errors(outputs_and_grads(module, x, make_dispatch(dispatch)), outputs_and_grads(module, x, LoopDispatch()))
    bad = {k: e for k, e in errors.items() if e > FP32_TOL}
    assert not bad, bad


def check_bf16(make: Callable[[], nn.Module], dispatch: str) -> None:
    torch.manual_seed(0)
    module16 = make().to(torch.bfloat16)
    module32 = copy.deepcopy(module16).float()  # the same (bf16-representable) values in fp32
    x = tokens_in(torch.bfloat16)
    want = outputs_and_grads(module32, x.float(), LoopDispatch())
    fast = relative_errors(outputs_and_grads(module16, x, make_dispatch(dispatch)), want)
    loop = relative_errors(outputs_and_grads(module16, x, LoopDispatch()), want)
    bad = {k: (fast[k], loop[k]) for k in want if fast[k] > min(2 * loop[k] + 2 * BF16_U, BF16_CAP)}
    assert not bad, bad


def loads(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Tokens per real expert of the module's MoE layer for inputs ``x``."""
    layer = module.layer
    plan = layer.router(x).plan
    return plan.mask[:, : layer.experts.num_experts].sum(0)


LORA_CASES = [
    ("top_1", 0), ("top_1", 2), ("top_2", 0), ("top_2", 2), ("adamoe", 2), ("mor", 0),
    ("expert_choice", 0), ("soft", 0), ("dynmole", 0), ("gw", 0),
]
FFN_CASES = [
    ("top_1", 0, "glu"), ("top_1", 2, "glu"), ("top_2", 0, "glu"), ("top_2", 2, "mlp"), ("top_2_sigmoid", 0, "glu"),
    ("expert_choice", 0, "glu"), ("soft", 0, "mlp"),
]
VARIABLE = ("expert_choice", "soft", "dynmole", "gw")


def grouped_mm_ran(run: Callable[[], object]) -> bool:
    """Whether ``run`` called the ``F.grouped_mm`` kernel (aten::_grouped_mm), forward or backward."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run()
    return any(event.name == "aten::_grouped_mm" for event in prof.events())


@pytest.mark.parametrize("kind,null", LORA_CASES)
def test_lora_cases_have_uneven_loads_and_take_the_paths_they_claim(kind, null):
    """The cases below exercise what they say: uneven loads with a real expert that gets no token
    where the routing allows it; ``fast`` runs a top-1 plan's whole MLP on sorted rows (SortedRows)
    and splits the variable plans (DynMoLE soft, GW broadcast) into tokens routed to every expert and
    the rest (VariableSplit)."""
    torch.manual_seed(0)
    module = LoRACase(make_router(kind, null), null)
    plan = module.layer.router(tokens_in()).plan
    counts = loads(module, tokens_in())
    assert (plan.top_idx is None) == (kind in VARIABLE)
    if kind not in VARIABLE:
        assert counts[-1] == 0 and counts.max() >= 3 * int(counts[counts > 0].min())
    assert plan.mask[:, EXPERTS:].any() == bool(null)
    assert (make_dispatch("fast").lora_rows(plan, EXPERTS) is not None) == (kind == "top_1")
    if kind in ("dynmole", "gw"):
        split = VariableSplit.of(plan, EXPERTS)
        assert 0 < split.num_full < TOKENS and sparse_lora_pays(split.rest_experts_per_token, EXPERTS, sorted_rows=False)


@pytest.mark.parametrize("dispatch", ["fast", "wide", "sparse"])
@pytest.mark.parametrize("kind,null", LORA_CASES)
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_lora_expert_paths_equal_the_loop(kind, null, dispatch, dtype):
    (check_fp32 if dtype == "fp32" else check_bf16)(lambda: LoRACase(make_router(kind, null), null), dispatch)


@pytest.mark.parametrize("kind,null,bank", FFN_CASES)
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_ffn_expert_paths_equal_the_loop(kind, null, bank, dtype):
    torch.manual_seed(0)
    counts = loads(FFNCase(make_router(kind, null), null, bank), tokens_in())
    if kind not in ("expert_choice", "soft"):
        assert counts[-1] == 0
    (check_fp32 if dtype == "fp32" else check_bf16)(lambda: FFNCase(make_router(kind, null), null, bank), "fast")


UNALIGNED = {
    # LoRA rank 5 (20 bytes fp32, 10 bf16) and FFN intermediate 37: rows no multiple of 16 bytes
    "lora_top_1_rank_5": lambda: LoRACase(make_router("top_1", 0), 0, rank=5),
    "lora_top_2_rank_5": lambda: LoRACase(make_router("top_2", 2), 2, rank=5),
    "ffn_top_2_inter_37": lambda: FFNCase(make_router("top_2", 0), 0, intermediate=37),
}


@pytest.mark.parametrize("case", sorted(UNALIGNED))
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_unaligned_widths_take_the_per_group_products_and_equal_the_loop(case, dtype):
    """``F.grouped_mm`` needs 16-byte aligned rows; with widths that are not, the sparse paths fall
    back to one product per expert (no grouped kernel runs) and still equal the loop."""
    dt = torch.float32 if dtype == "fp32" else torch.bfloat16
    torch.manual_seed(0)
    assert not grouped_mm_ran(lambda: outputs_and_grads(UNALIGNED[case]().to(dt), tokens_in(dt), make_dispatch("sparse")))
    (check_fp32 if dtype == "fp32" else check_bf16)(UNALIGNED[case], "sparse")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_aligned_cases_run_the_grouped_kernel_where_it_runs(dtype):
    """The aligned LoRA and FFN cases above compare ``F.grouped_mm`` (not only its fallback) with the
    loop wherever the probe found the kernel working for this device and dtype (on this CPU build:
    fp32 and bf16)."""
    torch.manual_seed(0)
    for make in (lambda: LoRACase(make_router("top_2", 0), 0), lambda: FFNCase(make_router("top_2", 0), 0)):
        ran = grouped_mm_ran(lambda: outputs_and_grads(make().to(dtype), tokens_in(dtype), make_dispatch("sparse")))
        assert ran == _grouped_mm_runs(torch.device("cpu"), dtype)


@pytest.mark.parametrize("case", ["groups", "parrot_soft", "parrot_top1", "parrot_top2", "factorllm"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_method_layers_fast_dispatch_equals_the_loop(case, dtype):
    """MoMa's modality groups, Parrot's projector (``projector.moe.dispatch: fast | loop`` sets the
    same attribute) and FactorLLM's split experts."""
    make = {
        "groups": GroupsCase,
        "parrot_soft": lambda: ParrotCase(None),
        "parrot_top1": lambda: ParrotCase(1),
        "parrot_top2": lambda: ParrotCase(2),
        "factorllm": FactorLLMCase,
    }[case]
    (check_fp32 if dtype == "fp32" else check_bf16)(make, "fast")


@pytest.mark.parametrize("dtype,tol", [(torch.float32, FP32_TOL), (torch.bfloat16, 2 * BF16_U)])
@pytest.mark.parametrize("width", [16, 10])
def test_grouped_linear_switch_chooses_grouped_mm_or_the_per_group_products(dtype, tol, width):
    """``grouped_linear`` with ``grouped_mm`` True (the kernel, where the probe passed and the width is
    16-byte aligned) and False (one ``F.linear`` per group), on 13 rows in uneven groups with an
    empty one: the same output and gradients (bf16: within 2u of the largest entry)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(13, 32, generator=generator).to(dtype)
    w = torch.randn(4, width, 32, generator=generator).to(dtype)
    offsets = torch.tensor([6, 6, 7, 13], dtype=torch.int32)
    grad_out = torch.randn(13, width, generator=generator).to(dtype)
    results, kernel = [], []
    for grouped_mm in (True, False):
        xi, wi = x.clone().requires_grad_(True), w.clone().requires_grad_(True)

        def run() -> None:
            y = grouped_linear(xi, wi, offsets, grouped_mm=grouped_mm)
            y.backward(grad_out)
            results.append([y.detach().float(), xi.grad.float(), wi.grad.float()])

        kernel.append(grouped_mm_ran(run))
    assert kernel == [width * x.element_size() % 16 == 0 and _grouped_mm_runs(x.device, dtype), False]
    for fast, ref in zip(*results):
        assert (fast - ref).abs().max() <= tol * ref.abs().max()
    assert results[0][2][1].abs().max() == 0  # the empty group's weight gets an exact zero gradient


def test_permute_rows_equals_index_select_with_its_scatter_add_backward():
    """``permute_rows`` (gather whose backward is the inverse permutation) against ``index_select``
    (whose backward is a scatter-add)."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, generator=generator)
    order = torch.randperm(7, generator=generator)
    grad_out = torch.randn(7, 5, generator=generator)
    fast_x, ref_x = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fast = permute_rows(fast_x, order)
    ref = ref_x.index_select(0, order)
    fast.backward(grad_out)
    ref.backward(grad_out)
    assert torch.equal(fast, ref)
    assert torch.equal(fast_x.grad, ref_x.grad)
