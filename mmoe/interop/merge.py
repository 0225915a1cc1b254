"""Fold every dense (unrouted) LoRA of a model into its base weights, so the model exports as plain linears.

Dense LoRA comes in two forms: ``LoRALinear`` (attention LoRA), merged by its own ``merge()``, and an
MLP block whose router is ``none`` over one LoRA expert (a plain LoRA on gate/up/down, weight 1 for
every token), merged here into the block's base MLP. Routed experts are not dense and stay.
"""

from __future__ import annotations

import torch
from torch import nn

from mmoe.moe.core.experts import LoRAExperts
from mmoe.moe.core.layer import MoEBlock, MoELayer
from mmoe.moe.core.lora_linear import merge_lora
from mmoe.moe.core.routers import FixedRouter


def _plain_lora_block(module: nn.Module) -> bool:
    """An MoE block that is one LoRA with weight 1 for every token (router ``none``, one expert, no null experts)."""
    if not isinstance(module, MoEBlock) or module.base is None or not isinstance(module.core, MoELayer):
        return False
    experts = module.core.experts
    return isinstance(module.core.router, FixedRouter) and isinstance(experts, LoRAExperts) and experts.num_experts == 1 and not experts.num_null


@torch.no_grad()
def merge_lora_block(block: MoEBlock) -> nn.Module:
    """The block's base MLP with ``W + scaling * B A`` folded into each adapted linear."""
    experts = block.core.experts
    for name, delta in experts.deltas.items():
        linear = getattr(block.base, name)
        update = (delta.lora_B[0].float() @ delta.lora_A[0].float()) * experts.scaling
        linear.weight.copy_((linear.weight.float() + update).to(linear.weight.dtype))
    return block.base


def merge_dense_lora(model: nn.Module) -> int:
    """Merge every dense LoRA of ``model`` in place; returns how many modules were merged."""
    blocks = [(name, module) for name, module in model.named_modules() if _plain_lora_block(module)]
    for name, block in blocks:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, merge_lora_block(block))
    return len(blocks) + merge_lora(model)
