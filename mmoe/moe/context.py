"""How MoE modules inside the (unmodified) LLM learn per-forward facts.

The joint model owns the list of its MoE modules. For the duration of one forward it hands each a
``RoutingContext``; afterwards it collects what they recorded (aux losses, router statistics).
When the forward ends each module keeps the context in *replay* mode: gradient checkpointing
recomputes layers during backward, and the recomputation must route exactly as the forward did
while recording nothing. The next forward replaces it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Iterator, Protocol

import torch


@dataclass
class RoutingContext:
    """Per-token facts for one forward, shaped ``[B, L]`` like the spliced LLM input.

    ``token_mask`` is True for real tokens (False for padding). During cached generation the
    decode steps see fewer positions than the context holds: those are newly generated text tokens.
    ``replay``: route as recorded but record no loss or statistic (checkpoint recomputation).
    """

    modality_ids: torch.Tensor | None = None
    token_mask: torch.Tensor | None = None
    language_ids: torch.Tensor | None = None
    replay: bool = False


class RoutedModule(Protocol):
    """What the joint model needs from an MoE module."""

    routing_context: RoutingContext | None

    def pop_aux_losses(self) -> dict[str, torch.Tensor]:
        """Weighted auxiliary losses of the last forward(s), cleared on read."""

    def pop_router_stats(self) -> dict[str, torch.Tensor]:
        """Router statistics of the last forward(s), cleared on read."""


@contextmanager
def routing_context(modules: list[RoutedModule], ctx: RoutingContext) -> Iterator[None]:
    for module in modules:
        module.routing_context = ctx
    try:
        yield
    finally:
        replay = replace(ctx, replay=True)
        for module in modules:
            module.routing_context = replay


def collect_aux_losses(modules: list[RoutedModule]) -> dict[str, torch.Tensor]:
    """Sum each named aux loss over all MoE modules (MoE-LLaVA sums per-layer losses)."""
    totals: dict[str, torch.Tensor] = {}
    for module in modules:
        for name, value in module.pop_aux_losses().items():
            totals[name] = totals[name] + value if name in totals else value
    return totals


def collect_router_stats(modules: list[RoutedModule], names: list[str]) -> dict[str, dict[str, torch.Tensor]]:
    """Router statistics keyed by each module's name (e.g. ``llm.layers.3.mlp``)."""
    return {name: module.pop_router_stats() for name, module in zip(names, modules)}
