"""What the joint model returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mmoe.moe.core.context import SampleRouting


@dataclass
class MMoEOutput:
    """``loss`` = ``lm_loss`` + every aux loss; each aux loss is also reported by name.

    ``sample_routing``: each router's expert distribution at the positions the caller announced
    (``MMoEModel.forward(routing_positions=...)``), keyed by MoE block name then group.
    ``hidden_states``: the LLM's per-layer states when asked for (``output_hidden_states=True``).
    """

    loss: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)
    router_stats: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    sample_routing: dict[str, dict[str, SampleRouting]] = field(default_factory=dict)
    hidden_states: tuple[torch.Tensor, ...] | None = None
    past_key_values: object | None = None


@dataclass
class SplicedInputs:
    """The LLM's input after visual tokens are spliced in; ``modality_ids`` is 0 text, 1 image."""

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    modality_ids: torch.Tensor
    labels: torch.Tensor | None
