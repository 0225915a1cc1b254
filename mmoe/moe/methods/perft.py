"""PERFT (Liu et al. 2024): parameter-efficient routed fine-tuning of an LLM that already is an MoE.

The HF sparse-MoE block of a decoder layer stays as it is, frozen, in the ``llm`` group; a
``PERFTLayer`` holds it as a submodule, calls it, and adds PEFT experts that act on the block's
input ``h``: ``y' = MoE(h) + sum_j w_j Delta_j(h)``. No HF class is patched.

Variants (``moe.perft.variant``): ``R`` its own router (any ``moe.router``) over M PEFT experts;
``E`` one PEFT expert per base expert, weighted by the base router's own top-k weights (read by
calling the base block's gate module, which returns logits, weights and indices with the base
model's renormalisation rule): ``sum_k g_k (E_k(h) + Delta_k(h)) = MoE(h) + sum_k g_k Delta_k(h)``;
``D`` M always-on experts, a plain sum; ``S`` one always-on expert.

PEFT experts: ``lora`` ``Delta(h) = (alpha / r) B A dropout(h)`` (``d -> r -> d``) or ``parallel``
``Delta(h) = W2 silu(W1 h)`` (``r`` hidden units, unscaled). Their second projection starts at
zero, so a fresh PERFT model computes exactly the base model (upstream draws it from N(0, 1e-12)).
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from mmoe.moe.config import PERFTConfig
from mmoe.moe.core.dispatch import Dispatch
from mmoe.moe.core.experts import FFNExperts, LoRAExperts
from mmoe.moe.core.layer import MoELayer, Routed
from mmoe.moe.core.routers import FixedExperts, RouterOutput, RoutingPlan, TokenInfo

# model_type -> (module, class) of the HF sparse-MoE block PERFT wraps.
SPARSE_BLOCKS = {
    "mixtral": ("transformers.models.mixtral.modeling_mixtral", "MixtralSparseMoeBlock"),
    "qwen2_moe": ("transformers.models.qwen2_moe.modeling_qwen2_moe", "Qwen2MoeSparseMoeBlock"),
    "qwen3_moe": ("transformers.models.qwen3_moe.modeling_qwen3_moe", "Qwen3MoeSparseMoeBlock"),
    "olmoe": ("transformers.models.olmoe.modeling_olmoe", "OlmoeSparseMoeBlock"),
}


def sparse_block_class(model_type: str) -> type:
    module, name = SPARSE_BLOCKS[model_type]
    return getattr(importlib.import_module(module), name)


class HiddenLoRAExperts(LoRAExperts):
    """M LoRA experts on the MoE block's input: ``Delta_j(h) = (alpha / r) B_j A_j dropout(h)``."""

    label = "perft/lora"

    def __init__(self, *, dim: int, num_experts: int, rank: int, alpha: float, dropout: float = 0.0, num_null: int = 0, dtype: torch.dtype | None = None) -> None:
        super().__init__(
            shapes={"hidden": (dim, dim)}, num_experts=num_experts, rank=rank, alpha=alpha, dropout=dropout,
            num_null=num_null, dtype=dtype,
        )

    def forward(self, x: torch.Tensor, plan: RoutingPlan, dispatch: Dispatch, base: nn.Module | None = None) -> torch.Tensor:
        return self.deltas["hidden"](self.dropout(x), plan, dispatch) * self.scaling


def build_peft_experts(cfg: PERFTConfig, *, dim: int, num_experts: int, num_null: int, dtype: torch.dtype) -> nn.Module:
    """The PEFT expert bank of one PERFT layer (second projection zero: a no-op at init)."""
    if cfg.adapter == "lora":
        return HiddenLoRAExperts(dim=dim, num_experts=num_experts, rank=cfg.rank, alpha=cfg.alpha, dropout=cfg.dropout, num_null=num_null, dtype=dtype)
    bank = FFNExperts(
        num_experts=num_experts, hidden=dim, intermediate=cfg.rank, kind="mlp", activation=nn.SiLU(), num_null=num_null,
        init_std=None, dtype=dtype,
    )
    nn.init.zeros_(bank.down_proj)
    return bank


class BaseGateRouter(FixedExperts, nn.Module):
    """PERFT-E: the frozen base MoE's own routing, read by calling its gate module (no parameters here)."""

    def __init__(self, *, num_experts: int, top_k: int) -> None:
        super().__init__()
        self.num_experts, self.top_k = num_experts, top_k

    def expected_experts(self) -> float:
        return float(self.top_k)

    def one_expert_per_token(self) -> bool:
        """Whether every plan gives each token exactly one expert (the LoRA dispatch's sorted-rows path)."""
        return self.top_k == 1

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None, gate: nn.Module) -> RouterOutput:
        logits, weight, idx = gate(x)
        logits = logits.float()
        plan = RoutingPlan.from_top_k(idx, weight.float(), self.num_experts)
        return RouterOutput(logits, logits.softmax(-1), plan, tokens=tokens)


class AllExpertsRouter(FixedExperts, nn.Module):
    """PERFT-D / PERFT-S: every PEFT expert on every token with weight 1 (a plain sum)."""

    def __init__(self, num_experts: int) -> None:
        super().__init__()
        self.num_experts = num_experts

    def expected_experts(self) -> float:
        return float(self.num_experts)

    def one_expert_per_token(self) -> bool:
        """No: every PEFT expert runs on every token (a dense plan)."""
        return False

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        ones = torch.ones(x.shape[0], self.num_experts, device=x.device)
        return RouterOutput(ones.log(), ones / self.num_experts, RoutingPlan.from_mask(ones.bool(), ones, dense=True), tokens=tokens)


class PERFTLayer(MoELayer):
    """``y' = base_moe(h) + PEFT(h)``: the HF sparse-MoE block (frozen, ``llm``) plus routed PEFT experts.

    Called like every block core, ``(x, tokens, base) -> (y, {group: Routed})`` on real tokens;
    R and E report their routing (statistics, ``moe.losses`` for R), D and S have none.
    """

    def __init__(self, *, variant: str, base_moe: nn.Module, router: nn.Module, experts: nn.Module, dispatch: Dispatch) -> None:
        super().__init__(router=router, experts=experts, dispatch=dispatch)
        self.variant = variant
        self.base_moe = base_moe

    def forward(self, x: torch.Tensor, tokens: TokenInfo, base: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, Routed]]:
        out = self.router(x, tokens, self.base_moe.gate) if self.variant == "E" else self.router(x, tokens)
        delta = self.experts(x, out.plan, self.dispatch)
        y = self.base_moe(x.unsqueeze(0)).squeeze(0)
        routed = {"": Routed(out, self.num_experts, tokens)} if self.variant in ("R", "E") else {}
        return y + delta.to(y.dtype), routed
