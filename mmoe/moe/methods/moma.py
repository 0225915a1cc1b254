"""MoMa (Lin et al. 2024): modality-aware expert groups, and the aux routers that make expert choice causal.

**Groups.** Experts are partitioned by modality; a token only reaches its own modality's group.
Routing is hierarchical: a fixed split by modality id (from the splice, never guessed), then each
group's own router picks experts inside the group. A group whose modality is absent from the batch
still runs on zero tokens, so its parameters are used every step (ZeRO-3).

**Aux routers.** Expert choice looks at the whole batch (future tokens included), so it cannot run
during generation. Per group, an aux router ``sigmoid(silu(x W1) W2)`` learns with binary
cross-entropy which experts expert choice would pick for a token; at inference a token goes to
expert j iff that probability exceeds the threshold, weighted by the main router's score. They are
built frozen and learn in their own phase, a stage that trains the ``aux_routers`` group
(``configs/train/moma_aux_routers.yaml``): in training mode with trainable aux routers the layer adds
the BCE (``moma_aux_router_bce``), computed on detached inputs so the main model gets no gradient
from it. A persistent ``trained`` flag, saved with the aux routers, records that this happened; at
inference untrained aux routers are refused (or, with ``router.causal_fallback``, bypassed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmoe.moe.core.layer import MoELayer, Routed
from mmoe.moe.core.routers import ExpertChoiceInferenceError, ExpertChoiceRouter, RouterOutput, RoutingPlan, TokenInfo, WrappingRouter

MODALITY_IDS = {"text": 0, "image": 1}


class ModalityGroups(nn.Module):
    """One ``MoELayer`` per modality; called like a ``MoELayer``, returning one ``Routed`` per group."""

    def __init__(self, groups: dict[str, MoELayer]) -> None:
        super().__init__()
        unknown = sorted(set(groups) - set(MODALITY_IDS))
        if unknown:
            raise ValueError(f"unknown modality group(s) {unknown}; known: {sorted(MODALITY_IDS)}")
        self.groups = nn.ModuleDict(groups)

    def expert_layers(self) -> dict[str, MoELayer]:
        return dict(self.groups.items())

    def forward(self, x: torch.Tensor, tokens: TokenInfo, base: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, Routed]]:
        y = None
        routed: dict[str, Routed] = {}
        covered = 0
        for name, layer in self.groups.items():
            index = (tokens.modality == MODALITY_IDS[name]).nonzero().squeeze(1)
            out, records = layer(x[index], tokens.select(index), base)
            y = (y if y is not None else out.new_zeros(x.shape[0], out.shape[-1])).index_copy(0, index, out)
            routed[name] = records[""]
            covered += index.numel()
        if covered != x.shape[0]:
            have = {MODALITY_IDS[name] for name in self.groups}
            missing = sorted(set(tokens.modality.unique().tolist()) - have)
            names = [n for n, i in MODALITY_IDS.items() if i in missing] or missing
            raise ValueError(
                f"tokens of modality {names} reached an MoE layer whose groups are {list(self.groups)}; "
                "configure an expert group for every modality in the batch"
            )
        return y, routed


class AuxRouter(nn.Module):
    """``silu(x W1) W2`` logits; the aux router's probabilities are their sigmoid."""

    def __init__(self, dim: int, num_experts: int, *, hidden_ratio: float = 0.5) -> None:
        super().__init__()
        hidden = max(1, int(dim * hidden_ratio))
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, num_experts, bias=False)
        self.register_buffer("trained", torch.zeros((), dtype=torch.bool))

    def declared_groups(self) -> dict[str, str]:
        return {"w1": "aux_routers", "w2": "aux_routers", "trained": "aux_routers"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x.to(self.w1.weight.dtype)))).float()


UNTRAINED_AUX_ROUTERS = (
    "MoMa's aux routers were never trained (their 'trained' flag is false), so they cannot stand in for "
    "expert choice at inference. Run the aux-router phase (a stage that trains the 'aux_routers' group, e.g. "
    "configs/train/moma_aux_routers.yaml) or set model.moe.router.causal_fallback=true"
)


class AuxRoutedRouter(WrappingRouter):
    """Expert choice in training; the trained aux routers' decisions at inference (each expert
    decides per token, as in expert choice, so its costs are the expert-choice router's)."""

    def __init__(self, *, main: ExpertChoiceRouter, aux_router: AuxRouter, bce_coef: float = 1.0, threshold: float = 0.5) -> None:
        super().__init__(main)
        self.aux_router = aux_router
        self.aux_router.requires_grad_(False)
        self.bce_coef = bce_coef
        self.threshold = threshold

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        if not self.training:
            return self._infer(x, tokens)
        out = self.main(x, tokens)
        if any(p.requires_grad for p in self.aux_router.parameters()) and torch.is_grad_enabled():
            target = out.plan.mask.float()
            bce = F.binary_cross_entropy_with_logits(self.aux_router(x.detach()), target) if x.shape[0] else self.aux_router(x).sum() * 0.0
            out.aux_losses["moma_aux_router_bce"] = self.bce_coef * bce
            self.aux_router.trained.fill_(True)
        return out

    def _infer(self, x: torch.Tensor, tokens: TokenInfo | None) -> RouterOutput:
        if not bool(self.aux_router.trained):
            if self.main.causal_fallback:
                return self.main(x, tokens)
            raise ExpertChoiceInferenceError(UNTRAINED_AUX_ROUTERS)
        logits = self.main.logits(x)
        scores = self.main.scores(logits)
        mask = self.aux_router(x).sigmoid() > self.threshold
        return RouterOutput(logits, scores, RoutingPlan.from_mask(mask, scores), tokens=tokens)
