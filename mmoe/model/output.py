"""What the joint model returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class MMoEOutput:
    """``loss`` = ``lm_loss`` + every aux loss; each aux loss is also reported by name."""

    loss: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)
    router_stats: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    past_key_values: object | None = None


@dataclass
class SplicedInputs:
    """The LLM's input after visual tokens are spliced in; ``modality_ids`` is 0 text, 1 image."""

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    modality_ids: torch.Tensor
    labels: torch.Tensor | None
