"""The composed MoE layer and the block that replaces an LLM's MLP.

``MoELayer`` = router x expert bank x dispatch, on a flat batch of real tokens. Every *core* of a
block (one ``MoELayer``, or MoMa's ``ModalityGroups`` of them) is called the same way,
``core(x, tokens, base) -> (y, {group: Routed})``, and returns what each of its routers did.
``MoEBlock`` is what sits at ``decoder_layer.mlp``: it reads the routing context that the joint
model set for this LLM call (padding mask, modality ids, language ids, phase), hands only real
tokens to its core, writes the results back in place, and records weighted aux losses and router
statistics into the call's records.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmoe.moe.core.context import RoutingContext
from mmoe.moe.core.dispatch import Dispatch
from mmoe.moe.core.losses import RouterLoss
from mmoe.moe.core.routers import RouterOutput, TokenInfo


@dataclass
class Routed:
    """What one router decided for the tokens it saw, and how many real experts it routes to."""

    out: RouterOutput
    num_real: int
    tokens: TokenInfo


class MoELayer(nn.Module):
    """``y_t = bank(x_t)`` mixed over the experts the router picked for token t."""

    def __init__(self, *, router: nn.Module, experts: nn.Module, dispatch: Dispatch) -> None:
        super().__init__()
        self.router = router
        self.experts = experts
        self.dispatch = dispatch

    @property
    def num_experts(self) -> int:
        return self.experts.num_experts

    def expert_layers(self) -> dict[str, "MoELayer"]:
        return {"-": self}

    def forward(self, x: torch.Tensor, tokens: TokenInfo, base: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, Routed]]:
        out = self.router(x, tokens)
        return self.experts(x, out.plan, self.dispatch, base), {"": Routed(out, self.num_experts, tokens)}


def _context_error(ctx: RoutingContext, batch: int, length: int) -> str:
    return (
        f"routing context of shape {tuple(ctx.token_mask.shape)} (phase {ctx.phase}) does not describe this "
        f"MoE block's input [{batch}, {length}]: the LLM was called with inputs the joint model did not announce"
    )


def real_tokens(ctx: RoutingContext | None, batch: int, length: int, device: torch.device) -> tuple[torch.Tensor | None, TokenInfo]:
    """Flat indices of the real tokens of a ``[batch, length]`` input (None: all) and their ``TokenInfo``.

    Without a context (the LLM called on its own, outside ``MMoEModel``) every position is a real
    text token. A context that does not describe this input is an error, never guessed around.
    """
    if ctx is None:
        flat = torch.arange(batch * length, device=device)
        return None, TokenInfo(flat // length, flat % length, torch.zeros_like(flat))
    if tuple(ctx.token_mask.shape) != (batch, length):
        raise RuntimeError(_context_error(ctx, batch, length))
    mask = ctx.token_mask.reshape(-1)
    index = mask.nonzero().squeeze(1)
    all_real = index.numel() == batch * length
    flat = torch.arange(batch * length, device=device) if all_real else index
    modality = ctx.modality_ids.reshape(-1)
    language = ctx.language_ids.reshape(-1) if ctx.language_ids is not None else None
    if not all_real:
        modality = modality[index]
        language = language[index] if language is not None else None
    return (None if all_real else index), TokenInfo(flat // length, flat % length, modality, language)


class MoEBlock(nn.Module):
    """Drop-in replacement for a gate/up/down MLP: ``[B, L, D] -> [B, L, D]``.

    ``base`` is the original dense MLP when the experts adapt it (LoRA experts), else None.
    ``routing_context`` is set by the joint model for each LLM call and cleared after it.
    """

    def __init__(self, *, core: nn.Module, losses: list[RouterLoss] | None = None, base: nn.Module | None = None) -> None:
        super().__init__()
        self.core = core
        self.base = base
        self.losses = list(losses or [])
        self.routing_context: RoutingContext | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        batch, length, dim = hidden.shape
        ctx = self.routing_context
        index, tokens = real_tokens(ctx, batch, length, hidden.device)
        flat = hidden.reshape(-1, dim)
        x = flat if index is None else flat[index]
        y, routed = self.core(x, tokens, self.base)
        self._record(routed, ctx)
        if index is not None:
            y = y.new_zeros(flat.shape[0], y.shape[-1]).index_copy(0, index, y)
        return y.view(batch, length, -1)

    def _record(self, routed: dict[str, Routed], ctx: RoutingContext | None) -> None:
        """Weighted losses and statistics into the call's records. A recomputation computes the
        losses too (checkpointing needs it to save the same tensors) but keeps nothing."""
        for group, r in routed.items():
            losses = {loss.name: loss.coef * loss(r.out) for loss in self.losses}
            if ctx is None or not ctx.records_anything:
                continue
            for name, value in [*losses.items(), *r.out.aux_losses.items()]:
                ctx.records.add_loss(name, value)
            ctx.records.stats_for(self).add(r.out, r.num_real, f"{group}/" if group else "", r.tokens.language)
            ctx.records.add_sample_routing(self, group, r.tokens, r.out)
