"""Parrot's text-guided MoE projector (Sun et al., ICML 2025; AIDC-AI/Parrot).

After the MLP projector maps vision features to the LLM width (``H``, CLS token first), the
projected CLS token attends over the word embeddings of its sample's prompt tokens (no learned
Q/K/V, scale ``1/sqrt(d)``). A bias-free linear router turns that pooled text vector into softmax
weights over E experts (one distribution per image); every expert runs on all visual tokens and
the outputs are mixed by those weights. Residual: ``paper`` ``G = H + alpha * MoE(H)`` or ``code``
``G = MoE(H) + alpha * H``. ``bypass`` returns ``H`` (stage 1 trains the MLP projector alone).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from mmoe.moe.config import ParrotConfig
from mmoe.moe.context import RoutingContext
from mmoe.moe.dispatch import make_dispatch
from mmoe.moe.experts import FFNExperts
from mmoe.moe.routers import SoftRouter, TopKRouter
from mmoe.moe.stats import RouterStats

if TYPE_CHECKING:
    from mmoe.model.projector import PromptContext


def attend_prompt(query: torch.Tensor, prompt: "PromptContext | None") -> torch.Tensor:
    """``softmax(q . E^T / sqrt(d)) . E`` over each image's prompt embeddings; zero without prompt tokens."""
    if prompt is None:
        return torch.zeros_like(query)
    embeds = prompt.embeds.to(query.dtype)
    mask = prompt.mask.bool()
    scores = torch.einsum("nd,nld->nl", query, embeds).float() / math.sqrt(query.shape[-1])
    has_prompt = mask.any(-1, keepdim=True)
    scores = scores.masked_fill(~mask, float("-inf")).masked_fill(~has_prompt, 0.0)
    attn = scores.softmax(-1) * mask
    return torch.einsum("nl,nld->nd", attn.to(embeds.dtype), embeds)


class ParrotProjector(nn.Module):
    """MLP projector followed by the prompt-conditioned MoE; ``layers`` keeps the MLP's weight names."""

    needs_prompt = True

    def __init__(self, mlp: nn.Module, cfg: ParrotConfig, width: int) -> None:
        super().__init__()
        self.layers = mlp.layers
        num = cfg.num_experts
        if cfg.top_k is None:
            self.router = SoftRouter(width, num, init_std=None)
        else:
            self.router = TopKRouter(width, num, cfg.top_k, renormalize=True, init_std=None)
        kind = "glu" if cfg.expert == "swiglu" else "mlp"
        self.experts = FFNExperts(num, width, cfg.intermediate_size or width, kind, nn.SiLU(), init_std=None)
        self.dispatch = make_dispatch(cfg.dispatch)
        self.residual = cfg.residual
        self.alpha = cfg.alpha
        self.bypass = cfg.bypass
        self.routing_context: RoutingContext | None = None
        self._stats = RouterStats()

    def forward(self, features: torch.Tensor, prompt: "PromptContext | None" = None) -> torch.Tensor:
        hidden = self.layers(features)
        if self.bypass:
            return hidden
        images, tokens, width = hidden.shape
        out = self.router(attend_prompt(hidden[:, 0], prompt))
        self._stats.add(out, self.experts.num_experts)
        plan = out.plan.repeat_rows(tokens)
        mixed = self.experts(hidden.reshape(images * tokens, width), plan, self.dispatch).view(images, tokens, width)
        if self.residual == "paper":
            return hidden + self.alpha * mixed
        return mixed + self.alpha * hidden

    def pop_aux_losses(self) -> dict[str, torch.Tensor]:
        return {}

    def pop_router_stats(self) -> dict[str, torch.Tensor]:
        return self._stats.pop()
