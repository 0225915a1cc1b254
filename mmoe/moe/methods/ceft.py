"""CEFT (context-faithful expert fine-tuning, Bai et al. 2025): train only the experts a Router Lens
selection names.

An expert bank stacks its experts' weights ``[E, ...]`` in one parameter, so freezing per expert is
gradient masking: a hook multiplies each stacked gradient by a ``[E, 1, ...]`` 0/1 mask before it is
accumulated, and with no weight decay (checked by the config) AdamW leaves zero-gradient slices
exactly as they were. Banks say which parameters are stacked (``expert_parameters()``); nothing is
read from names or shapes.
"""

from __future__ import annotations

import torch
from torch import nn

from mmoe.config.errors import ConfigError
from mmoe.model.parts import parameter_groups
from mmoe.moe.core.layer import MoEBlock
from mmoe.moe.methods.router_lens import ExpertSelection


def _mask_hook(mask: torch.Tensor):
    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * mask.to(device=grad.device, dtype=grad.dtype).view(-1, *([1] * (grad.dim() - 1)))

    return hook


def train_selected_experts(model: nn.Module, selection: ExpertSelection, source: str) -> dict[str, list[int]]:
    """Mask the gradients of every expert the selection does not name; returns ``{block/group: experts}``.

    The selection must describe exactly this model's MoE blocks and groups with their expert counts,
    and every trainable ``experts`` parameter must belong to a bank it covers.
    """
    blocks = {name: module for name, module in model.named_modules() if isinstance(module, MoEBlock)}
    if set(blocks) != set(selection.blocks):
        raise ConfigError(
            f"{source} selects experts of MoE blocks {sorted(selection.blocks)}, but this model's are {sorted(blocks)}"
        )
    covered: set[int] = set()
    chosen: dict[str, list[int]] = {}
    for name, block in blocks.items():
        layers = block.core.expert_layers()
        groups = selection.blocks[name]
        if set(layers) != set(groups):
            raise ConfigError(f"{source}: blocks.{name} has groups {sorted(groups)}, the model's block has {sorted(layers)}")
        for group, layer in layers.items():
            entry, bank = groups[group], layer.experts
            if entry.num_experts != bank.num_experts:
                raise ConfigError(
                    f"{source}: blocks.{name}.{group}.num_experts={entry.num_experts}, the model's bank has {bank.num_experts}"
                )
            mask = torch.zeros(bank.num_experts)
            mask[entry.experts] = 1.0
            for param in bank.expert_parameters():
                covered.add(id(param))
                if param.requires_grad:
                    param.register_hook(_mask_hook(mask))
            chosen[f"{name}/{group}"] = list(entry.experts)
    groups_of = parameter_groups(model)
    loose = [n for n, p in model.named_parameters() if p.requires_grad and groups_of[n] == "experts" and id(p) not in covered]
    if loose:
        raise ConfigError(f"{source} selects experts of MoE banks, but trainable experts-group parameters {loose} are in no bank")
    return chosen
