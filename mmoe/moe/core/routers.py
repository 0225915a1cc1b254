"""Routers: given token features, decide which experts each token reaches and with what weight.

A router is called as ``router(x, tokens)`` on the real tokens of a batch (``x: [T, D]``;
``tokens``: a ``TokenInfo`` with each token's sequence, position, modality and language, or None)
and returns a ``RouterOutput``: raw logits and scores (for losses and statistics) and a
``RoutingPlan`` (the only thing a dispatch reads). New routing methods (DynMoLE, Mixture of Routers,
GW broadcast with per-sequence slots, null-expert routing ...) are new routers or wrappers around
one that return the same structure; the layer, dispatch, losses and statistics need no change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mmoe.config.errors import ConfigError
from mmoe.moe.config import RouterConfig, renormalization_error

Score = Literal["softmax", "sigmoid"]


@dataclass
class TokenInfo:
    """Per real token: its sequence in the batch, its position in the current input, and (when
    known) its modality id (0 text, 1 image) and language id."""

    sequence: torch.Tensor
    position: torch.Tensor
    modality: torch.Tensor | None = None
    language: torch.Tensor | None = None

    def select(self, index: torch.Tensor) -> "TokenInfo":
        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[index]

        return TokenInfo(self.sequence[index], self.position[index], pick(self.modality), pick(self.language))


@dataclass
class RoutingPlan:
    """Token -> expert assignments for ``T`` tokens and ``E`` routable experts (null experts included).

    ``combine`` holds the float32 combine weight of each (token, expert) pair, 0 where ``mask`` is
    False. ``top_idx``/``top_weight`` (``[T, k]``) are set when every token has exactly ``k``
    experts, which lets a dispatch list assignments without a host sync. ``dense`` says every token
    goes to every expert (soft routing), so a dispatch may mix experts with wide products instead.
    """

    combine: torch.Tensor
    mask: torch.Tensor
    top_idx: torch.Tensor | None = None
    top_weight: torch.Tensor | None = None
    dense: bool = False

    @property
    def num_tokens(self) -> int:
        return self.combine.shape[0]

    @property
    def num_experts(self) -> int:
        return self.combine.shape[1]

    @classmethod
    def from_top_k(cls, idx: torch.Tensor, weight: torch.Tensor, num_experts: int) -> "RoutingPlan":
        combine = torch.zeros(idx.shape[0], num_experts, dtype=weight.dtype, device=idx.device)
        combine.scatter_(1, idx, weight)
        mask = torch.zeros_like(combine, dtype=torch.bool).scatter_(1, idx, True)
        return cls(combine, mask, idx, weight)

    @classmethod
    def from_mask(cls, mask: torch.Tensor, weights: torch.Tensor, dense: bool = False) -> "RoutingPlan":
        return cls(weights * mask, mask, dense=dense)

    def assignments(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat ``(token, expert, weight)`` lists, one entry per routed pair."""
        if self.top_idx is not None:
            k = self.top_idx.shape[1]
            tokens = torch.arange(self.num_tokens, device=self.top_idx.device).repeat_interleave(k)
            return tokens, self.top_idx.reshape(-1), self.top_weight.reshape(-1)
        tokens, experts = self.mask.nonzero(as_tuple=True)
        return tokens, experts, self.combine[tokens, experts]

    def repeat_rows(self, repeats: int) -> "RoutingPlan":
        """Each row routed ``repeats`` times in a row (Parrot: one routing per image, for all its tokens)."""
        def rep(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.repeat_interleave(repeats, dim=0)

        return RoutingPlan(rep(self.combine), rep(self.mask), rep(self.top_idx), rep(self.top_weight), self.dense)


@dataclass
class RouterOutput:
    """What one router call produced.

    ``logits``/``scores``: ``[T, E]`` float32 raw router outputs and their softmax/sigmoid scores.
    ``aux_losses``: already-weighted losses a router computes itself (e.g. MoMa's aux-router BCE).
    ``extras``: per-token values ``[T]`` a method exposes (e.g. uncertainty flags); the router
    statistics report each one's mean over tokens.
    ``tokens``: the ``TokenInfo`` the router was given (losses may group by sequence or language).
    """

    logits: torch.Tensor
    scores: torch.Tensor
    plan: RoutingPlan
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    tokens: TokenInfo | None = None

    def distribution(self) -> torch.Tensor:
        """Scores as a distribution over experts (sigmoid scores are normalised per token)."""
        return self.scores / self.scores.sum(-1, keepdim=True).clamp_min(1e-9)


class RouterGate(nn.Module):
    """Bias-free linear ``[E, D]`` computed in float32 whatever the weights' dtype (selective precision).

    Its one parameter belongs to ``group`` (``routers`` in the LLM, ``moe_projector`` in Parrot).
    """

    def __init__(self, dim: int, num_experts: int, *, init_std: float | None = 0.02, group: str = "routers") -> None:
        super().__init__()
        self.group = group
        self.weight = nn.Parameter(torch.empty(num_experts, dim))
        if init_std is None:
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        else:
            nn.init.normal_(self.weight, std=init_std)

    def declared_groups(self) -> dict[str, str]:
        return {"weight": self.group}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.float(), self.weight.float())


class FixedExperts:
    """Routers whose tokens all reach ``expected_experts()`` experts; data-dependent routers
    (DynMoLE, expert choice) override ``experts_range`` with the fewest and most a token can reach.
    Every router also declares ``one_expert_per_token()``, the plan fact the LoRA cost rule reads."""

    def experts_range(self) -> tuple[float, float]:
        k = self.expected_experts()
        return k, k


class Router(FixedExperts, nn.Module):
    """A float32 linear gate; subclasses choose the assignment.

    Parameters live in submodules that return tensors (here ``gate``): ZeRO-3 gathers a module's
    own parameters around its call and again in backward through its tensor outputs, which a
    ``RouterOutput`` is not. Routing methods added later follow the same rule.
    """

    def __init__(
        self,
        dim: int,
        num_experts: int,
        *,
        score: Score = "softmax",
        jitter: float = 0.0,
        init_std: float | None = 0.02,
        group: str = "routers",
    ) -> None:
        super().__init__()
        self.num_experts = num_experts
        self.score_fn = score
        self.jitter = jitter
        self.gate = RouterGate(dim, num_experts, init_std=init_std, group=group)

    def jittered(self, x: torch.Tensor) -> torch.Tensor:
        """Router inputs times U(1-j, 1+j) noise in training (``jitter``), else unchanged."""
        if self.training and self.jitter > 0:
            x = x * torch.empty_like(x).uniform_(1.0 - self.jitter, 1.0 + self.jitter)
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.jittered(x))

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(-1) if self.score_fn == "softmax" else logits.sigmoid()


class TopKRouter(Router):
    """Token choice: each token takes its ``k`` best experts, weighted by their scores.

    Top-1 keeps the gate probability as the weight (Switch Transformers), so the LM loss reaches the
    router; ``renormalize`` (k >= 2 only) rescales the k chosen weights to sum to 1 (Mixtral).
    """

    def __init__(self, dim: int, num_experts: int, *, top_k: int, renormalize: bool = False, **router) -> None:
        super().__init__(dim, num_experts, **router)
        if top_k > num_experts:
            raise ValueError(f"top_k={top_k} exceeds the {num_experts} experts")
        if renormalize and top_k < 2:
            raise ValueError(renormalization_error(top_k))
        self.top_k = top_k
        self.renormalize = renormalize

    def expected_experts(self) -> float:
        return float(self.top_k)

    def one_expert_per_token(self) -> bool:
        """Whether every plan gives each token exactly one expert (the LoRA dispatch's sorted-rows path)."""
        return self.top_k == 1

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        logits = self.logits(x)
        scores = self.scores(logits)
        return RouterOutput(logits, scores, top_k_plan(scores, self.top_k, renormalize=self.renormalize), tokens=tokens)


def top_k_plan(scores: torch.Tensor, top_k: int, *, renormalize: bool = False) -> RoutingPlan:
    """Each token's ``top_k`` best experts by score, weighted by the scores (renormalised to sum 1 if asked)."""
    weight, idx = torch.topk(scores, top_k, dim=-1)
    if renormalize:
        weight = weight / weight.sum(-1, keepdim=True).clamp_min(1e-9)
    return RoutingPlan.from_top_k(idx, weight, scores.shape[1])


class ExpertChoiceInferenceError(ConfigError):
    """Expert choice was asked to route at inference, where it is not causal."""


EXPERT_CHOICE_AT_INFERENCE = (
    "expert-choice routing is not causal (each expert picks tokens from the whole batch, future tokens "
    "included), so it cannot route at inference. Train MoMa's aux routers first (model.moe.groups.aux_router "
    "and a stage that trains the 'aux_routers' group, e.g. configs/train/moma_aux_routers.yaml), or set "
    "model.moe.router.causal_fallback=true to route each token to its top-round(capacity_factor) experts"
)


class ExpertChoiceRouter(Router):
    """Expert choice (Zhou et al. 2022; MoMa with sigmoid scores): each expert takes its
    ``ceil(capacity_factor * T / E)`` highest-scoring tokens of the batch. Non-causal.

    In eval mode it refuses to route unless ``causal_fallback`` is set: then each token takes its
    ``max(1, round(capacity_factor))`` best experts by score (a causal token-choice stand-in).
    """

    def __init__(self, dim: int, num_experts: int, *, capacity_factor: float = 1.0, causal_fallback: bool = False, **router) -> None:
        super().__init__(dim, num_experts, **router)
        self.capacity_factor = capacity_factor
        self.causal_fallback = causal_fallback

    def capacity(self, num_tokens: int) -> int:
        return min(num_tokens, math.ceil(self.capacity_factor * num_tokens / self.num_experts))

    def expected_experts(self) -> float:
        return float(self.capacity_factor)

    def one_expert_per_token(self) -> bool:
        """No: each expert picks its tokens, so a token reaches any number of experts."""
        return False

    def experts_range(self) -> tuple[float, float]:
        """From none (no expert picked the token) to all E (every expert did)."""
        return 0.0, float(self.num_experts)

    def fallback_k(self) -> int:
        return min(self.num_experts, max(1, round(self.capacity_factor)))

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        logits = self.logits(x)
        scores = self.scores(logits)
        if not self.training:
            if not self.causal_fallback:
                raise ExpertChoiceInferenceError(EXPERT_CHOICE_AT_INFERENCE)
            weight, idx = torch.topk(scores, self.fallback_k(), dim=-1)
            return RouterOutput(logits, scores, RoutingPlan.from_top_k(idx, weight, self.num_experts), tokens=tokens)
        return self.choose(logits, scores, tokens)

    def choose(self, logits: torch.Tensor, scores: torch.Tensor, tokens: TokenInfo | None) -> RouterOutput:
        """The expert-choice assignment of a batch (training, and the aux routers' BCE target)."""
        chosen = torch.topk(scores.t(), self.capacity(scores.shape[0]), dim=-1).indices  # [E, C]
        mask = torch.zeros_like(scores.t(), dtype=torch.bool).scatter_(1, chosen, True).t()
        return RouterOutput(logits, scores, RoutingPlan.from_mask(mask, scores), tokens=tokens)


class SoftRouter(Router):
    """Dense soft routing: every token reaches every expert, weighted by its scores (Parrot)."""

    def expected_experts(self) -> float:
        return float(self.num_experts)

    def one_expert_per_token(self) -> bool:
        """No: every token reaches every expert (a dense plan)."""
        return False

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        logits = self.logits(x)
        scores = self.scores(logits)
        plan = RoutingPlan.from_mask(torch.ones_like(scores, dtype=torch.bool), scores, dense=True)
        return RouterOutput(logits, scores, plan, tokens=tokens)


class WrappingRouter(nn.Module):
    """A router around a ``main`` router (GW-MoE's broadcast, MoMa's aux routing): inference routes
    like ``main`` or by its rule, so the experts a token reaches are ``main``'s."""

    def __init__(self, main: nn.Module) -> None:
        super().__init__()
        self.main = main

    @property
    def num_experts(self) -> int:
        return self.main.num_experts

    def expected_experts(self) -> float:
        return self.main.expected_experts()

    def experts_range(self) -> tuple[float, float]:
        return self.main.experts_range()

    def one_expert_per_token(self) -> bool:
        return self.main.one_expert_per_token()


class FixedRouter(FixedExperts, nn.Module):
    """No router: every token goes to expert 0 with weight 1 (one expert: a plain LoRA or dense FFN)."""

    num_experts = 1

    def expected_experts(self) -> float:
        return 1.0

    def one_expert_per_token(self) -> bool:
        return True

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        ones = torch.ones(x.shape[0], 1, device=x.device)
        plan = RoutingPlan(ones, ones.bool(), torch.zeros(x.shape[0], 1, dtype=torch.long, device=x.device), ones)
        return RouterOutput(torch.zeros_like(ones), ones, plan, tokens=tokens)


def build_router(cfg: RouterConfig, *, dim: int, num_experts: int) -> nn.Module:
    """A router from a ``RouterConfig`` over ``num_experts`` routable experts (null experts included).

    Routing methods (``mmoe.moe.methods``) build on this module's classes, so they are imported here.
    """
    from mmoe.moe.methods.dynmole import DynMoLERouter
    from mmoe.moe.methods.gw import GWBroadcastRouter
    from mmoe.moe.methods.mor import MixtureOfRouters

    common = dict(score=cfg.score, jitter=cfg.jitter, init_std=cfg.init_std)
    if cfg.type == "none":
        return FixedRouter()
    if cfg.type == "expert_choice":
        return ExpertChoiceRouter(dim, num_experts, capacity_factor=cfg.capacity_factor, causal_fallback=cfg.causal_fallback, **common)
    if cfg.type == "soft":
        return SoftRouter(dim, num_experts, **common)
    if cfg.type == "dynmole":
        dyn = cfg.dynmole
        return DynMoLERouter(
            dim, num_experts, top_p=dyn.top_p, keep_top_k=dyn.keep_top_k, entropy_threshold=dyn.entropy_threshold,
            entropy_type=dyn.entropy_type, entropy_index=dyn.entropy_index, entropy_eps=dyn.entropy_eps,
            jitter=cfg.jitter, init_std=cfg.init_std,
        )
    if cfg.type == "mor":
        router = MixtureOfRouters(
            dim, num_experts, num_routers=cfg.mor.num_routers, top_k=cfg.top_k, renormalize=cfg.renormalize,
            combine=cfg.mor.combine, router_balance=cfg.mor.router_balance, jitter=cfg.jitter, init_std=cfg.init_std,
        )
    else:
        router = TopKRouter(dim, num_experts, top_k=cfg.top_k, renormalize=cfg.renormalize, **common)
    if cfg.gw is None:
        return router
    return GWBroadcastRouter(main=router, threshold=cfg.gw.threshold, normalized=cfg.gw.normalized, max_slots=cfg.gw.max_slots)
