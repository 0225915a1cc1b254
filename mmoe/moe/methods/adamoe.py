"""AdaMoE (Zeng et al., Findings of EMNLP 2024): token-adaptive routing with null experts.

The routing set holds the bank's ``n`` true experts and ``m`` null experts (ids ``n .. n+m-1``: zero
output, zero cost, dropped by every dispatch), and ``top_k`` is raised, so a token that picks ``r``
null experts computes only ``k - r`` true ones. As in the released code (CengZihao/AdaMoE@180f122),
the picked weights are renormalised over the picked true experts only, and a token that picked only
null experts gets a zero output (the residual carries it). The balance loss counts the null experts
as one averaged bucket, so it steers how often nulls are used on average without forcing identical
nulls to balance against each other.

Statistics: every router with null experts reports ``true_experts_per_token`` (``RouterStats``);
this router adds ``expert_flops_saved`` (forward FLOPs per token the dispatch did not spend, against
the same ``k`` without null experts) and ``expert_flops_saved_share`` (that saving as a share of the
``k``-expert FLOPs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmoe.moe.core.losses import empty_loss
from mmoe.moe.core.routers import RouterOutput, RoutingPlan, TokenInfo, TopKRouter


class AdaMoERouter(TopKRouter):
    """Top-k over ``num_real`` true + null experts, weights renormalised over the picked true experts.

    ``flops_per_expert``: forward FLOPs one more true expert costs a token under this layer's dispatch
    (0 when the dispatch computes every expert anyway, e.g. the wide LoRA product), told by the builder.
    ``balance``: AdaMoE's balance loss, which needs this layer's true-expert count, added (weighted) to
    the router output's aux losses.
    """

    def __init__(
        self, dim: int, num_experts: int, *, num_real: int, top_k: int, renormalize: bool = True,
        balance: AdaMoEBalanceLoss | None = None, flops_per_expert: float = 0.0, **router,
    ) -> None:
        super().__init__(dim, num_experts, top_k=top_k, **router)
        if not 0 < num_real < num_experts:
            raise ValueError(f"AdaMoE needs true and null experts: {num_real} true of {num_experts} routable")
        self.num_real = num_real
        self.renormalize_true = renormalize
        self.flops_per_expert = flops_per_expert
        self.balance = balance

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        logits = self.logits(x)
        scores = self.scores(logits)
        weight, idx = torch.topk(scores, self.top_k, dim=-1)
        true = idx < self.num_real
        if self.renormalize_true:
            total = (weight * true).sum(-1, keepdim=True)
            weight = torch.where(true, weight / torch.where(total > 0, total, torch.ones_like(total)), weight)
        skipped = (self.top_k - true.sum(-1)).float()
        extras = {
            "expert_flops_saved_sum": skipped * self.flops_per_expert,
            "expert_flops_saved_share_sum": skipped / self.top_k if self.flops_per_expert > 0 else torch.zeros_like(skipped),
        }
        out = RouterOutput(logits, scores, RoutingPlan.from_top_k(idx, weight, self.num_experts), extras=extras, tokens=tokens)
        if self.balance is not None:
            out.aux_losses[self.balance.name] = self.balance.coef * self.balance(out)
        return out


@dataclass
class AdaMoEBalanceLoss:
    """``(n + m) * sum_i f_i P_i`` over true and null experts (released LLaMA code, per layer).

    ``f_i``: expert i's share of the ``T * k`` picks, with every null expert's count replaced by the
    null experts' mean count when ``null_bucket``; ``P_i``: its mean routing probability.
    """

    coef: float
    num_real: int
    null_bucket: bool = True
    name: str = "adamoe_balance"

    def __call__(self, out: RouterOutput) -> torch.Tensor:
        if out.logits.shape[0] == 0:
            return empty_loss(out)
        probs = out.distribution()
        counts = out.plan.mask.float().sum(0)
        if self.null_bucket:
            counts = torch.cat([counts[: self.num_real], counts[self.num_real :].mean().expand(counts.shape[0] - self.num_real)])
        share = counts / counts.sum().clamp_min(1.0)
        return probs.shape[1] * (share * probs.mean(0)).sum()
