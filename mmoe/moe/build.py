"""Build an MoE block from ``model.moe`` for one dense gate/up/down MLP."""

from __future__ import annotations

from torch import nn

from mmoe.moe.config import MoEConfig
from mmoe.moe.dispatch import make_dispatch
from mmoe.moe.experts import build_experts
from mmoe.moe.groups import ModalityGroups
from mmoe.moe.layer import MoEBlock, MoELayer
from mmoe.moe.losses import build_losses
from mmoe.moe.moma import AuxRoutedRouter, AuxRouter
from mmoe.moe.routers import build_router


def _layer(cfg: MoEConfig, dense: nn.Module, num_experts: int) -> MoELayer:
    dim = dense.gate_proj.in_features
    experts = build_experts(cfg.experts, dense, num_experts)
    router = build_router(cfg.router, dim, num_experts + cfg.experts.num_null_experts)
    aux = cfg.groups.aux_router if cfg.groups is not None else None
    if aux is not None:
        router = AuxRoutedRouter(router, AuxRouter(dim, router.num_experts, aux.hidden_ratio), aux.bce_coef, aux.threshold)
    weight = dense.gate_proj.weight
    return MoELayer(router.to(device=weight.device), experts, make_dispatch(cfg.dispatch))


def build_block(dense: nn.Module, cfg: MoEConfig) -> MoEBlock:
    """One ``MoEBlock``: a single expert layer, or one per modality group; LoRA experts keep ``dense``."""
    if cfg.groups is not None:
        core = ModalityGroups({name: _layer(cfg, dense, count) for name, count in cfg.expert_counts().items()})
    else:
        core = _layer(cfg, dense, cfg.expert_counts()["all"])
    losses = build_losses(cfg.losses) if cfg.router.type != "none" else []
    return MoEBlock(core, losses, base=dense if cfg.experts.type == "lora" else None)
