"""Parrot's text-guided MoE projector (Sun et al., ICML 2025; AIDC-AI/Parrot).

After the MLP projector maps vision features to the LLM width (``H``, CLS token first), the
projected CLS token attends over the word embeddings of its sample's prompt tokens (no learned
Q/K/V, scale ``1/sqrt(d)``). A bias-free linear router turns that pooled text vector into softmax
weights over E experts (one distribution per image); every expert runs on all visual tokens and
the outputs are mixed by those weights. Residual: ``paper`` ``G = H + alpha * MoE(H)`` or ``code``
``G = MoE(H) + alpha * H``. ``bypass`` returns ``H`` (stage 1 trains the MLP projector alone).

Parrot is a projector, not a routed LLM block: it gets its prompt as an argument, like every
projector, and writes router statistics into the records it is handed (none for the blank image
that text-only training batches run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mmoe.moe.config import ParrotConfig
from mmoe.moe.core.context import RoutingRecords
from mmoe.moe.core.dispatch import make_dispatch
from mmoe.moe.core.experts import FFNExperts
from mmoe.moe.core.routers import SoftRouter, TopKRouter

GROUP = "moe_projector"


@dataclass
class PromptContext:
    """The word embeddings of each sample's tokens (``[B, L, D]``), which of them are prompt tokens
    (``mask``, ``[B, L]``), the sample each image belongs to (``sample_of_image``, ``[N_img]``) and,
    when known, each image's language id (for router statistics)."""

    embeds: torch.Tensor
    mask: torch.Tensor
    sample_of_image: torch.Tensor
    language_of_image: torch.Tensor | None = None


def attend_prompt(query: torch.Tensor, prompt: PromptContext | None) -> torch.Tensor:
    """``softmax(q . E^T / sqrt(d)) . E`` over each image's prompt embeddings; zero without prompt tokens."""
    if prompt is None:
        return torch.zeros_like(query)
    embeds = prompt.embeds[prompt.sample_of_image].to(query.dtype)
    mask = prompt.mask[prompt.sample_of_image].bool()
    scores = torch.einsum("nd,nld->nl", query, embeds).float() / math.sqrt(query.shape[-1])
    has_prompt = mask.any(-1, keepdim=True)
    scores = scores.masked_fill(~mask, float("-inf")).masked_fill(~has_prompt, 0.0)
    attn = scores.softmax(-1) * mask
    return torch.einsum("nl,nld->nd", attn.to(embeds.dtype), embeds)


class ParrotProjector(nn.Module):
    """MLP projector followed by the prompt-conditioned MoE; ``layers`` keeps the MLP's weight names."""

    def __init__(self, *, mlp_layers: nn.Module, cfg: ParrotConfig, width: int) -> None:
        super().__init__()
        self.layers = mlp_layers
        num = cfg.num_experts
        init = dict(init_std=cfg.init_std, group=GROUP)
        if cfg.top_k is None:
            self.router = SoftRouter(width, num, **init)
        else:
            self.router = TopKRouter(width, num, top_k=cfg.top_k, renormalize=cfg.top_k >= 2, **init)
        kind = "glu" if cfg.expert == "swiglu" else "mlp"
        self.experts = FFNExperts(
            num_experts=num, hidden=width, intermediate=cfg.intermediate_size or width, kind=kind, activation=nn.SiLU(), **init
        )
        self.dispatch = make_dispatch(cfg.dispatch)
        self.residual = cfg.residual
        self.alpha = cfg.alpha
        self.bypass = cfg.bypass

    def forward(self, features: torch.Tensor, prompt: PromptContext | None = None, records: RoutingRecords | None = None) -> torch.Tensor:
        hidden = self.layers(features)
        if self.bypass:
            return hidden
        images, tokens, width = hidden.shape
        out = self.router(attend_prompt(hidden[:, 0], prompt))
        if records is not None:
            language = prompt.language_of_image if prompt is not None else None
            records.stats_for(self).add(out, self.experts.num_experts, language=language)
        plan = out.plan.repeat_rows(tokens)
        mixed = self.experts(hidden.reshape(images * tokens, width), plan, self.dispatch).view(images, tokens, width)
        if self.residual == "paper":
            return hidden + self.alpha * mixed
        return mixed + self.alpha * hidden
