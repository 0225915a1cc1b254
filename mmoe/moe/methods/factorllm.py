"""FactorLLM (Zhao et al. 2024): factorise a dense FFN into experts, with the prior-approximate router.

**Split.** A gated FFN ``W_d (act(W_g x) * W_u x)`` is a sum over its intermediate neurons, so
partitioning the neurons into E disjoint groups gives E experts whose sum is exactly the dense FFN
(``split_ffn``: contiguous slices as the released code, or a seeded random partition).

**Router.** A biased linear router (the released code's ``route1``) picks the top-k experts by
softmax score; the chosen experts get the hard weight ``E / k`` (no probability weighting, so the
LM loss does not reach the router) and the rest 0. With ``k = E`` the layer is the dense FFN.

**Prior-approximate loss.** The dense FFN before the split stays in the layer, frozen, as the
teacher ``t``. Per token, ``l_e = mean_d (FFN_e(x) - t * k / E)^2`` says how well expert e
approximates its share of the teacher; ``Y`` is the one-hot of the k experts with the smallest
``l_e`` and the router learns ``KL(softmax(g) || softmax(Y))`` (both clipped to [1e-7, 1 - 1e-7]).
Unlike the released code, the loss is backpropagated (its training step returns the LM loss only;
the paper trains the router with it), it is the mean over all tokens (the released loss keeps the
first sample's), the teacher reads the layer's own input (the reference runs a separate teacher
model for its hidden states), and the scale is ``E / k`` (the reference writes ``E // k``; equal
when k divides E).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mmoe.moe.core.dispatch import Dispatch
from mmoe.moe.core.experts import FFNExperts
from mmoe.moe.core.layer import MoELayer, Routed
from mmoe.moe.core.losses import empty_loss
from mmoe.moe.core.routers import FixedExperts, RouterOutput, RoutingPlan, TokenInfo

CLIP = 1e-7


def split_ffn(dense: nn.Module, *, num_experts: int, grouping: str = "contiguous", seed: int = 0) -> FFNExperts:
    """E experts from the disjoint neuron groups of a gate/up/down FFN; their sum is the dense FFN."""
    gate, up, down = dense.gate_proj.weight, dense.up_proj.weight, dense.down_proj.weight
    inter = gate.shape[0]
    if inter % num_experts:
        raise ValueError(f"FactorLLM: the dense FFN's {inter} intermediate neurons do not split into {num_experts} equal experts")
    if grouping == "contiguous":
        order = torch.arange(inter)
    else:
        order = torch.randperm(inter, generator=torch.Generator().manual_seed(seed))
    groups = order.view(num_experts, inter // num_experts).to(gate.device)
    bank = FFNExperts(
        num_experts=num_experts, hidden=gate.shape[1], intermediate=inter // num_experts, kind="glu",
        activation=dense.act_fn, dtype=gate.dtype,
    ).to(gate.device)
    with torch.no_grad():
        bank.gate_proj.copy_(gate.detach()[groups])
        bank.up_proj.copy_(up.detach()[groups])
        bank.down_proj.copy_(down.detach()[:, groups].permute(1, 0, 2))
    return bank


class BiasedGate(nn.Module):
    """``x W^T + b`` in float32 with nn.Linear's initialisation (FactorLLM's router has a bias)."""

    def __init__(self, dim: int, num_experts: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_experts, dim))
        self.bias = nn.Parameter(torch.empty(num_experts))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -1 / math.sqrt(dim), 1 / math.sqrt(dim))

    def declared_groups(self) -> dict[str, str]:
        return {"weight": "routers", "bias": "routers"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.float(), self.weight.float(), self.bias.float())


class FactorLLMRouter(FixedExperts, nn.Module):
    """Top-k by softmax score with the hard weight ``E / k`` on each chosen expert."""

    def __init__(self, dim: int, num_experts: int, *, top_k: int) -> None:
        super().__init__()
        if top_k > num_experts:
            raise ValueError(f"top_k={top_k} exceeds the {num_experts} experts")
        self.num_experts, self.top_k = num_experts, top_k
        self.gate = BiasedGate(dim, num_experts)

    def expected_experts(self) -> float:
        return float(self.top_k)

    def one_expert_per_token(self) -> bool:
        """Whether every plan gives each token exactly one expert (the LoRA dispatch's sorted-rows path)."""
        return self.top_k == 1

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        logits = self.gate(x)
        scores = logits.softmax(-1)
        idx = torch.topk(scores, self.top_k, dim=-1).indices
        weight = torch.full(idx.shape, self.num_experts / self.top_k, device=x.device)
        return RouterOutput(logits, scores, RoutingPlan.from_top_k(idx, weight, self.num_experts), tokens=tokens)


def clipped_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``sum_j p_j log(p_j / q_j)``, both clipped to [1e-7, 1 - 1e-7] (the released DistillLoss)."""
    p, q = p.clamp(CLIP, 1 - CLIP), q.clamp(CLIP, 1 - CLIP)
    return (p * (p / q).log()).sum(-1).mean()


class FactorLLMLayer(MoELayer):
    """Split experts + FactorLLM router, with the frozen dense FFN as the prior-approximate teacher.

    In training (with grad enabled and ``prior_approx > 0``) the router output carries the weighted
    ``factorllm_prior_approx`` loss; the teacher and the per-expert errors are computed without grad.
    The teacher's parameters stay in the ``llm`` group (it is the LLM's own FFN).
    """

    def __init__(self, *, router: FactorLLMRouter, experts: FFNExperts, dispatch: Dispatch, teacher: nn.Module, prior_approx: float) -> None:
        super().__init__(router=router, experts=experts, dispatch=dispatch)
        self.teacher = teacher
        self.prior_approx = prior_approx

    def pseudo_labels(self, x: torch.Tensor) -> torch.Tensor:
        """``softmax(Y)``: Y the one-hot of the k experts that best approximate ``teacher(x) * k / E``."""
        with torch.no_grad():
            share = self.teacher(x).float() * (self.router.top_k / self.num_experts)
            outputs = torch.stack([self.experts.expert(e, x).float() for e in range(self.num_experts)], 1)
            error = (outputs - share.unsqueeze(1)).square().mean(-1)
            best = torch.topk(-error, self.router.top_k, dim=-1).indices
            return torch.zeros_like(error).scatter_(1, best, 1.0).softmax(-1)

    def forward(self, x: torch.Tensor, tokens: TokenInfo, base: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, Routed]]:
        out = self.router(x, tokens)
        y = self.experts(x, out.plan, self.dispatch)
        if self.training and self.prior_approx > 0 and torch.is_grad_enabled():
            loss = clipped_kl(out.scores, self.pseudo_labels(x)) if x.shape[0] else empty_loss(out)
            out.aux_losses["factorllm_prior_approx"] = self.prior_approx * loss
        return y, {"": Routed(out, self.num_experts, tokens)}


@dataclass
class FactorLLMBalanceLoss:
    """``mean(onehot_topk(p) * p)`` over tokens and experts (the released ``balance_loss``)."""

    coef: float
    name: str = "factorllm_balance"

    def __call__(self, out: RouterOutput) -> torch.Tensor:
        if out.logits.shape[0] == 0:
            return empty_loss(out)
        return (out.plan.mask.float() * out.scores).mean()
