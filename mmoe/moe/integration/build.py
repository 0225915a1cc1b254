"""Build an MoE block from ``model.moe`` for one dense gate/up/down MLP."""

from __future__ import annotations

from torch import nn

from mmoe.moe.config import MoEConfig
from mmoe.moe.core.dispatch import make_dispatch
from mmoe.moe.core.experts import build_experts
from mmoe.moe.core.layer import MoEBlock, MoELayer
from mmoe.moe.core.losses import build_losses
from mmoe.moe.core.routers import build_router
from mmoe.moe.methods.moma import AuxRoutedRouter, AuxRouter, ModalityGroups


def _layer(cfg: MoEConfig, dense: nn.Module, num_experts: int) -> MoELayer:
    dim = dense.gate_proj.in_features
    experts = build_experts(cfg.experts, dense, num_experts=num_experts)
    router = build_router(cfg.router, dim=dim, num_experts=num_experts + cfg.experts.num_null_experts)
    aux = cfg.groups.aux_router if cfg.groups is not None else None
    if aux is not None:
        router = AuxRoutedRouter(
            main=router, aux_router=AuxRouter(dim, router.num_experts, hidden_ratio=aux.hidden_ratio),
            bce_coef=aux.bce_coef, threshold=aux.threshold,
        )
    weight = dense.gate_proj.weight
    return MoELayer(router=router.to(device=weight.device), experts=experts, dispatch=make_dispatch(cfg.dispatch))


def build_block(dense: nn.Module, cfg: MoEConfig) -> MoEBlock:
    """One ``MoEBlock``: a single expert layer, or one per modality group; LoRA experts keep ``dense``."""
    if cfg.groups is not None:
        core = ModalityGroups({name: _layer(cfg, dense, count) for name, count in cfg.expert_counts().items()})
    else:
        core = _layer(cfg, dense, cfg.expert_counts()["all"])
    losses = build_losses(cfg.losses) if cfg.router.type != "none" else []
    return MoEBlock(core=core, losses=losses, base=dense if cfg.experts.type == "lora" else None)
