"""MoMa's auxiliary routers: causal stand-ins for batch-level expert-choice routing.

Expert choice looks at the whole batch (future tokens included), so it cannot run during
generation. Per group, an auxiliary router ``sigmoid(silu(x W1) W2)`` (``W1: d -> d*ratio``,
``W2: -> E``) learns, with binary cross-entropy, which experts expert choice would pick for a token.
At inference a token goes to expert j iff the aux router's probability exceeds the threshold; the
weight still comes from the main router's score.

The aux routers learn whenever their parameters are trainable: in training mode the layer then
adds the BCE against the expert-choice assignments (``moma_aux_router_bce``), computed on detached
inputs so the main model gets no gradient from it. They are built frozen. Phases (trainer API):
  1. main training: expert-choice routing; aux routers frozen and unused (or trainable: they then
     learn alongside, at no effect on the main model);
  2. ``start_aux_router_phase(model)``: every other parameter frozen, aux routers trainable (the
     paper's separate phase);
  3. inference: ``model.eval()`` routes through the aux routers (``set_causal_routing`` overrides).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mmoe.moe.routers import ExpertChoiceRouter, RouterOutput, RoutingPlan, TokenInfo

RoutingMode = Literal["auto", "expert_choice", "aux"]


class AuxRouter(nn.Module):
    """``silu(x W1) W2`` logits; the aux router's probabilities are their sigmoid."""

    def __init__(self, dim: int, num_experts: int, hidden_ratio: float = 0.5) -> None:
        super().__init__()
        hidden = max(1, int(dim * hidden_ratio))
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, num_experts, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x.to(self.w1.weight.dtype)))).float()


class AuxRoutedRouter(nn.Module):
    """Expert choice in training, aux-router decisions at inference.

    ``mode``: ``auto`` (expert choice while training, aux routers in eval), or forced either way.
    """

    def __init__(self, main: ExpertChoiceRouter, aux_router: AuxRouter, bce_coef: float = 1.0, threshold: float = 0.5) -> None:
        super().__init__()
        self.main = main
        self.aux_router = aux_router
        self.aux_router.requires_grad_(False)
        self.bce_coef = bce_coef
        self.threshold = threshold
        self.mode: RoutingMode = "auto"

    @property
    def num_experts(self) -> int:
        return self.main.num_experts

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        out = self.main(x, tokens)  # called as a module even when only its scores are used (ZeRO-3 gathers on call)
        if self.mode == "aux" or (self.mode == "auto" and not self.training):
            mask = self.aux_router(x).sigmoid() > self.threshold
            return RouterOutput(out.logits, out.scores, RoutingPlan.from_mask(mask, out.scores), tokens=tokens)
        if self.training and any(p.requires_grad for p in self.aux_router.parameters()):
            target = out.plan.mask.float()
            bce = F.binary_cross_entropy_with_logits(self.aux_router(x.detach()), target) if x.shape[0] else self.aux_router(x).sum() * 0.0
            out.aux_losses["moma_aux_router_bce"] = self.bce_coef * bce
        return out


def aux_routed_routers(model: nn.Module) -> list[AuxRoutedRouter]:
    return [m for m in model.modules() if isinstance(m, AuxRoutedRouter)]


def aux_router_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for router in aux_routed_routers(model) for p in router.aux_router.parameters()]


def start_aux_router_phase(model: nn.Module) -> None:
    """Freeze every parameter, then make only the aux routers trainable (they then emit their BCE loss)."""
    routers = aux_routed_routers(model)
    if not routers:
        raise ValueError("the model has no MoMa aux routers (set model.moe.groups.aux_router with router.type=expert_choice)")
    model.requires_grad_(False)
    for router in routers:
        router.aux_router.requires_grad_(True)


def set_causal_routing(model: nn.Module, mode: RoutingMode) -> None:
    """Route every aux-routed layer by ``mode`` (``auto``: expert choice in training, aux in eval)."""
    for router in aux_routed_routers(model):
        router.mode = mode
