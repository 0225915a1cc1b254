"""GW-MoE (Wu et al. 2024): in fine-tuning, tokens the router is unsure about go to every expert.

A token is uncertain when the Shannon entropy of its router distribution, ``-sum_i p_i log(p_i +
1e-5)`` (the reference's ``calc_entropy``), is ``>= threshold``: in nats, or divided by ``ln E`` when
``normalized``. With ``max_slots``, only the first ``max_slots`` uncertain tokens of each sequence
(by position) are broadcast, as the reference caps them. A broadcast token's output is
``sum_i p_i E_i(x)`` over all experts (the paper's intent; the released code's loop overwrites
instead of accumulating and never applies the experts to these tokens). Every other token keeps the
wrapped router's top-k plan. In eval mode the wrapped router decides alone: plain top-k, no
inference cost. Router statistics get ``gw_broadcast`` (the share of broadcast tokens) and
``gw_entropy`` (the normalised entropy) in training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mmoe.moe.core.routers import RouterOutput, RoutingPlan, TokenInfo, WrappingRouter

GW_EPS = 1e-5


def first_per_sequence(flags: torch.Tensor, tokens: TokenInfo, limit: int) -> torch.Tensor:
    """``flags`` kept only for the first ``limit`` flagged tokens of each sequence, in position order."""
    span = int(tokens.position.max()) + 1 if flags.numel() else 1
    order = torch.argsort(tokens.sequence * span + tokens.position)
    sorted_flags = flags[order].long()
    sequences = tokens.sequence[order]
    totals = torch.zeros(int(sequences.max()) + 1 if flags.numel() else 1, dtype=torch.long, device=flags.device)
    totals.index_add_(0, sequences, sorted_flags)
    before = torch.cumsum(totals, 0) - totals  # flagged tokens in earlier sequences
    rank = torch.cumsum(sorted_flags, 0) - before[sequences]
    keep = torch.zeros_like(flags)
    keep[order] = (sorted_flags > 0) & (rank <= limit)
    return keep


class GWBroadcastRouter(WrappingRouter):
    """Wraps a token-choice router: uncertain tokens reach every expert in training, weighted by ``p``.
    Its costs are the wrapped router's: broadcasting happens in training only."""

    def __init__(self, *, main: nn.Module, threshold: float, normalized: bool = True, max_slots: int | None = None) -> None:
        super().__init__(main)
        self.threshold, self.normalized, self.max_slots = threshold, normalized, max_slots

    def uncertain(self, probs: torch.Tensor, tokens: TokenInfo | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(broadcast flags ``[T]``, normalised entropy ``[T]``) of the router distributions ``probs``."""
        nats = -(probs * (probs + GW_EPS).log()).sum(-1)
        normalised = nats / math.log(probs.shape[-1])
        flags = (normalised if self.normalized else nats) >= self.threshold
        if self.max_slots is not None:
            if tokens is None:
                raise ValueError("GW-MoE's max_slots caps broadcast tokens per sequence and needs each token's sequence and position")
            flags = first_per_sequence(flags, tokens, self.max_slots)
        return flags, normalised

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        out = self.main(x, tokens)
        if not self.training:
            return out
        probs = out.distribution()
        flags, normalised = self.uncertain(probs.detach(), tokens)
        wide = flags.unsqueeze(1)
        plan = RoutingPlan(torch.where(wide, probs, out.plan.combine), out.plan.mask | wide)
        extras = {**out.extras, "gw_broadcast_sum": flags.float(), "gw_entropy_sum": normalised}
        return RouterOutput(out.logits, out.scores, plan, aux_losses=out.aux_losses, extras=extras, tokens=out.tokens)
