"""The composed MoE layer and the block that replaces an LLM's MLP.

``MoELayer`` = router x expert bank x dispatch, on a flat batch of real tokens.
``MoEBlock`` is what sits at ``decoder_layer.mlp``: it reads the routing context (padding mask,
modality ids), hands only real tokens to its core (one ``MoELayer`` or ``ModalityGroups``), writes
the results back in place, and records weighted aux losses and router statistics for the joint.
"""

from __future__ import annotations

import torch
from torch import nn

from mmoe.moe.context import RoutingContext
from mmoe.moe.dispatch import Dispatch
from mmoe.moe.groups import ModalityGroups
from mmoe.moe.losses import RouterLoss
from mmoe.moe.routers import RouterOutput, TokenInfo
from mmoe.moe.stats import RouterStats


class MoELayer(nn.Module):
    """``y_t = bank(x_t)`` mixed over the experts the router picked for token t."""

    def __init__(self, router: nn.Module, experts: nn.Module, dispatch: Dispatch) -> None:
        super().__init__()
        self.router = router
        self.experts = experts
        self.dispatch = dispatch

    @property
    def num_experts(self) -> int:
        return self.experts.num_experts

    def forward(self, x: torch.Tensor, base: nn.Module | None = None, tokens: TokenInfo | None = None) -> tuple[torch.Tensor, RouterOutput]:
        out = self.router(x, tokens)
        return self.experts(x, out.plan, self.dispatch, base), out


def _active_context(ctx: RoutingContext | None, training: bool) -> tuple[RoutingContext | None, bool]:
    """(context to route by, record?). A replay context (left after a forward) only applies to
    gradient-checkpoint recomputation (training with grad) and records nothing."""
    if ctx is None or (ctx.replay and not (training and torch.is_grad_enabled())):
        return None, True
    return ctx, not ctx.replay


def _real_tokens(ctx: RoutingContext | None, batch: int, length: int, device: torch.device) -> tuple[torch.Tensor | None, TokenInfo]:
    """Flat indices of the real tokens of a ``[batch, length]`` input (None: all) and their ``TokenInfo``.

    No context: every position is a real text token. Inputs whose shape differs from the context's
    are cached-generation decode steps: new text tokens.
    """
    def fit(t: torch.Tensor | None) -> torch.Tensor | None:
        if ctx is None or t is None:
            return None
        if t.dim() == 1 and t.shape[0] == batch:  # one value per sample
            return t.unsqueeze(1).expand(batch, length).reshape(-1)
        return t.reshape(-1) if tuple(t.shape) == (batch, length) else None

    mask, modality, language = (fit(getattr(ctx, k, None)) for k in ("token_mask", "modality_ids", "language_ids"))
    index = None
    if mask is not None:
        index = mask.nonzero().squeeze(1)
        if index.numel() == batch * length:
            index = None
    flat = torch.arange(batch * length, device=device) if index is None else index
    info = TokenInfo(flat // length, flat % length)
    if modality is not None:
        info.modality = modality if index is None else modality[index]
    if language is not None:
        info.language = language if index is None else language[index]
    return index, info


class MoEBlock(nn.Module):
    """Drop-in replacement for a gate/up/down MLP: ``[B, L, D] -> [B, L, D]``.

    ``base`` is the original dense MLP when the experts adapt it (LoRA experts), else None.
    """

    def __init__(self, core: nn.Module, losses: list[RouterLoss] | None = None, base: nn.Module | None = None) -> None:
        super().__init__()
        self.core = core
        self.base = base
        self.losses = list(losses or [])
        self.routing_context: RoutingContext | None = None
        self._aux: dict[str, torch.Tensor] = {}
        self._stats = RouterStats()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        batch, length, dim = hidden.shape
        ctx, record = _active_context(self.routing_context, self.training)
        index, tokens = _real_tokens(ctx, batch, length, hidden.device)
        flat = hidden.reshape(-1, dim)
        x = flat if index is None else flat[index]
        if isinstance(self.core, ModalityGroups):
            y, records = self.core(x, tokens, self.base)
        else:
            y, out = self.core(x, self.base, tokens)
            records = {"": (out, self.core.num_experts, tokens)}
        self._record(records, keep=record)
        if index is not None:
            y = y.new_zeros(flat.shape[0], y.shape[-1]).index_copy(0, index, y)
        return y.view(batch, length, -1)

    def _record(self, records: dict[str, tuple[RouterOutput, int, TokenInfo | None]], keep: bool) -> None:
        """Weighted losses and statistics; a replay computes the losses too (checkpointing needs the
        recomputation to save the same tensors) but keeps nothing."""
        for group, (out, num_real, tokens) in records.items():
            losses = {loss.name: loss.coef * loss(out) for loss in self.losses}
            if not keep:
                continue
            for name, value in [*losses.items(), *out.aux_losses.items()]:
                self._aux[name] = self._aux[name] + value if name in self._aux else value
            language = tokens.language if tokens is not None else None
            self._stats.add(out, num_real, f"{group}/" if group else "", language)

    def pop_aux_losses(self) -> dict[str, torch.Tensor]:
        aux, self._aux = self._aux, {}
        return aux

    def pop_router_stats(self) -> dict[str, torch.Tensor]:
        return self._stats.pop()
