"""LLaVA-MoLE pieces beyond the generic MoE block: the plain LoRA its attention projections keep.

The MoLE expert layer itself is an ``MoEBlock`` with ``LoRAExperts`` on the frozen MLP's
gate/up/down and a top-1 token-choice router (``model.moe.experts.type: lora``). LLaVA-1.5's LoRA
baseline adapts every linear; MoLE replaces the MLP part with routed experts, and the attention
projections may keep one shared LoRA each (``model.moe.attention_lora``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LoRALinear(nn.Module):
    """A base linear plus ``(alpha / rank) * B A dropout(x)``.

    The base weight and bias stay registered under their own names (``weight``, ``bias``), so the
    module's state-dict keys keep the original linear's names next to ``lora_A`` / ``lora_B``.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.scaling = alpha / rank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        factory = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, **factory))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)
        return F.linear(x, self.weight, self.bias) + delta * self.scaling


def add_attention_lora(layers: nn.ModuleList, cfg) -> int:
    """Wrap each decoder layer's attention projections named in ``cfg.targets``; returns how many."""
    count = 0
    for layer in layers:
        attention = layer.self_attn
        for name in cfg.targets:
            linear = getattr(attention, name, None)
            if not isinstance(linear, nn.Linear):
                raise ValueError(f"moe.attention_lora: attention has no linear '{name}' ({type(attention).__name__})")
            setattr(attention, name, LoRALinear(linear, cfg.rank, cfg.alpha, cfg.dropout))
            count += 1
    return count
