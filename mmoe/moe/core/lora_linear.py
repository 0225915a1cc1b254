"""A dense (unrouted) LoRA on one linear, and adding it to the attention projections.

LLaVA-1.5's LoRA baseline adapts every linear; LLaVA-MoLE replaces the MLP part with routed LoRA
experts, and the attention projections may keep one shared LoRA each (``model.moe.attention_lora``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmoe.moe.config import AttentionLoRAConfig


class LoRALinear(nn.Module):
    """A base linear plus ``(alpha / rank) * B A dropout(x)``.

    The base weight and bias stay registered under their own names (``weight``, ``bias``: group
    ``llm``), so the state-dict keys keep the original linear's names next to ``lora_A`` / ``lora_B``
    (group ``experts``: the adapter weights trained beside the experts). ``merge()`` folds the delta
    into the base weight and leaves an ``nn.Linear`` to put back in its place.
    """

    def __init__(self, base: nn.Linear, *, rank: int, alpha: float, dropout: float = 0.0) -> None:
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

    def declared_groups(self) -> dict[str, str]:
        return {"lora_A": "experts", "lora_B": "experts"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)
        return F.linear(x, self.weight, self.bias) + delta * self.scaling

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """An ``nn.Linear`` computing the same function: ``W + scaling * B A`` (dropout is a training-time op)."""
        merged = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, dtype=self.weight.dtype, device=self.weight.device)
        delta = (self.lora_B.float() @ self.lora_A.float()) * self.scaling
        merged.weight.copy_((self.weight.float() + delta).to(self.weight.dtype))
        if self.bias is not None:
            merged.bias.copy_(self.bias)
        return merged


def add_attention_lora(layers: nn.ModuleList, cfg: AttentionLoRAConfig) -> int:
    """Wrap each decoder layer's attention projections named in ``cfg.targets``; returns how many."""
    count = 0
    for layer in layers:
        attention = layer.self_attn
        for name in cfg.targets:
            linear = getattr(attention, name, None)
            if not isinstance(linear, nn.Linear):
                raise ValueError(f"moe.attention_lora: attention has no linear '{name}' ({type(attention).__name__})")
            setattr(attention, name, LoRALinear(linear, rank=cfg.rank, alpha=cfg.alpha, dropout=cfg.dropout))
            count += 1
    return count


def merge_lora(model: nn.Module) -> int:
    """Replace every ``LoRALinear`` in ``model`` by its merged ``nn.Linear``; returns how many."""
    targets = [(name, module) for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, module.merge())
    return len(targets)
