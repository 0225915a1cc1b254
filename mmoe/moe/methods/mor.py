"""Mixture of Routers (Zhang et al. 2025): several sub-routers choose experts jointly, weighted by a
learnable main router (a mixture of experts applied to the router itself).

With ``S`` sub-router gates ``W_s`` (each over the ``E`` experts) and a main gate ``W_m`` (over the
``S`` sub-routers), ``g = softmax(W_m x)`` and

- ``combine: probs``: ``p = sum_s g_s softmax(W_s x)``;
- ``combine: logits``: ``p = softmax(sum_s g_s W_s x)``;

then each token takes the ``top_k`` experts of ``p`` (weights renormalised for k >= 2 if asked, as a
top-k router). The paper's method section and code were not readable (only the abstract): both
combinations are offered, and the balance handling is the core balance loss on ``p`` plus, with
``router_balance > 0``, a Switch balance over the main router's choice of sub-routers
(``mor_router_balance``) so that no sub-router falls out of use. Router statistics get
``mor_main_entropy``, the main router's mean normalised entropy over the sub-routers.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from mmoe.moe.core.entropy import entropy
from mmoe.moe.core.routers import Router, RouterGate, RouterOutput, TokenInfo, top_k_plan


class MixtureOfRouters(Router):
    """``num_routers`` sub-router gates (stacked in one ``[S * E, D]`` gate) mixed by a main gate."""

    def __init__(
        self,
        dim: int,
        num_experts: int,
        *,
        num_routers: int,
        top_k: int,
        renormalize: bool = False,
        combine: Literal["probs", "logits"] = "probs",
        router_balance: float = 0.0,
        jitter: float = 0.0,
        init_std: float | None = 0.02,
    ) -> None:
        super().__init__(dim, num_experts * num_routers, score="softmax", jitter=jitter, init_std=init_std)
        if top_k > num_experts:
            raise ValueError(f"top_k={top_k} exceeds the {num_experts} experts")
        self.num_experts, self.num_routers = num_experts, num_routers
        self.top_k, self.renormalize = top_k, renormalize
        self.combine, self.router_balance = combine, router_balance
        self.main = RouterGate(dim, num_routers, init_std=init_std)

    def expected_experts(self) -> float:
        return float(self.top_k)

    def one_expert_per_token(self) -> bool:
        """Whether every plan gives each token exactly one expert (the LoRA dispatch's sorted-rows path)."""
        return self.top_k == 1

    def mix(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, p, g)``: the mixed expert logits and distribution ``[T, E]`` and the main router's
        sub-router weights ``[T, S]``. With ``combine: probs`` the logits are ``log p``."""
        x = self.jittered(x)
        sub = self.gate(x).view(-1, self.num_routers, self.num_experts)
        g = self.main(x).softmax(-1)
        if self.combine == "logits":
            logits = (g.unsqueeze(-1) * sub).sum(1)
            return logits, logits.softmax(-1), g
        probs = (g.unsqueeze(-1) * sub.softmax(-1)).sum(1)
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log(), probs, g

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        logits, probs, g = self.mix(x)
        extras = {"mor_main_entropy_sum": entropy(g, "shannon")}
        aux = {}
        if self.router_balance > 0:
            aux["mor_router_balance"] = self.router_balance * self.main_balance(g)
        plan = top_k_plan(probs, self.top_k, renormalize=self.renormalize)
        return RouterOutput(logits, probs, plan, aux_losses=aux, extras=extras, tokens=tokens)

    def main_balance(self, g: torch.Tensor) -> torch.Tensor:
        """Switch balance over sub-routers, ``S * sum_s f_s P_s``: ``f_s`` the share of tokens whose
        largest main weight is ``s``, ``P_s`` the mean weight (1.0 when balanced)."""
        if g.shape[0] == 0:
            return g.sum() * 0.0
        share = F.one_hot(g.argmax(-1), self.num_routers).float().mean(0)
        return self.num_routers * (share * g.mean(0)).sum()
