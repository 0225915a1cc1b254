"""Build an MoE block from ``model.moe``: for one dense gate/up/down MLP, or (PERFT) beside one HF sparse-MoE block."""

from __future__ import annotations

from torch import nn

from mmoe.moe.config import MoEConfig
from mmoe.moe.core.dispatch import Dispatch, make_dispatch
from mmoe.moe.core.experts import build_experts
from mmoe.moe.core.layer import MoEBlock, MoELayer
from mmoe.moe.core.losses import build_losses
from mmoe.moe.core.routers import build_router
from mmoe.moe.methods.adamoe import AdaMoEBalanceLoss, AdaMoERouter
from mmoe.moe.methods.factorllm import FactorLLMBalanceLoss, FactorLLMLayer, FactorLLMRouter, split_ffn
from mmoe.moe.methods.moma import AuxRoutedRouter, AuxRouter, ModalityGroups
from mmoe.moe.methods.perft import AllExpertsRouter, BaseGateRouter, PERFTLayer, build_peft_experts


def _flops_per_expert(bank: nn.Module, dispatch: Dispatch, k: int) -> float:
    """Forward FLOPs one more true expert costs a token of a top-``k`` plan (null picks included)
    under ``dispatch``, which chooses its path for k assignments per token (0 if that path computes
    every expert anyway)."""
    one = k == 1  # a top-1 plan gives every token exactly one expert
    computed = bank.cost_per_token(float(k), dispatch, assignments_per_token=float(k), sorted_rows=one)[1]
    return 2 * (computed - bank.cost_per_token(float(k - 1), dispatch, assignments_per_token=float(k), sorted_rows=one)[1])


def _router(cfg: MoEConfig, *, dim: int, bank: nn.Module, dispatch: Dispatch) -> nn.Module:
    """The router over ``bank``'s experts (and the configured null experts)."""
    routable = bank.num_experts + cfg.experts.num_null_experts
    if cfg.adamoe is None:
        return build_router(cfg.router, dim=dim, num_experts=routable)
    r, ada = cfg.router, cfg.adamoe
    balance = AdaMoEBalanceLoss(ada.balance, bank.num_experts, ada.null_bucket) if ada.balance > 0 else None
    return AdaMoERouter(
        dim, routable, num_real=bank.num_experts, top_k=r.top_k, renormalize=ada.renormalize, balance=balance,
        flops_per_expert=_flops_per_expert(bank, dispatch, r.top_k), score=r.score, jitter=r.jitter, init_std=r.init_std,
    )


def _layer(cfg: MoEConfig, dense: nn.Module, num_experts: int) -> MoELayer:
    dim = dense.gate_proj.in_features
    weight = dense.gate_proj.weight
    dispatch = make_dispatch(cfg.dispatch)
    if cfg.factorllm is not None:
        f = cfg.factorllm
        experts = split_ffn(dense, num_experts=num_experts, grouping=f.grouping, seed=f.seed)
        router = FactorLLMRouter(dim, num_experts, top_k=cfg.router.top_k).to(device=weight.device)
        return FactorLLMLayer(router=router, experts=experts, dispatch=dispatch, teacher=dense, prior_approx=f.prior_approx)
    experts = build_experts(cfg.experts, dense, num_experts=num_experts)
    router = _router(cfg, dim=dim, bank=experts, dispatch=dispatch)
    aux = cfg.groups.aux_router if cfg.groups is not None else None
    if aux is not None:
        router = AuxRoutedRouter(
            main=router, aux_router=AuxRouter(dim, router.num_experts, hidden_ratio=aux.hidden_ratio),
            bce_coef=aux.bce_coef, threshold=aux.threshold,
        )
    return MoELayer(router=router.to(device=weight.device), experts=experts, dispatch=dispatch)


def build_block(dense: nn.Module, cfg: MoEConfig) -> MoEBlock:
    """One ``MoEBlock``: a single expert layer, or one per modality group; LoRA experts keep ``dense``."""
    if cfg.groups is not None:
        core = ModalityGroups({name: _layer(cfg, dense, count) for name, count in cfg.expert_counts().items()})
    else:
        core = _layer(cfg, dense, cfg.expert_counts()["all"])
    losses = build_losses(cfg.losses) if cfg.router.type != "none" else []
    if cfg.factorllm is not None and cfg.factorllm.balance > 0:
        losses.append(FactorLLMBalanceLoss(cfg.factorllm.balance))
    return MoEBlock(core=core, losses=losses, base=dense if cfg.experts.type == "lora" else None)


def build_perft_block(base_moe: nn.Module, cfg: MoEConfig, *, dim: int) -> MoEBlock:
    """PERFT: PEFT experts (and their router) beside an HF sparse-MoE block, which the block calls unchanged.

    The base block's gate says how many experts it routes to and how many it picks (its ``num_experts``
    and ``top_k`` attributes); PERFT-E uses exactly those.
    """
    p = cfg.perft
    gate = base_moe.gate
    weight = gate.weight
    dispatch = make_dispatch(cfg.dispatch)
    num = {"E": gate.num_experts, "S": 1}.get(p.variant, cfg.experts.num_experts)
    experts = build_peft_experts(p, dim=dim, num_experts=num, num_null=cfg.experts.num_null_experts, dtype=weight.dtype)
    if p.variant == "R":
        router = _router(cfg, dim=dim, bank=experts, dispatch=dispatch)
    elif p.variant == "E":
        router = BaseGateRouter(num_experts=gate.num_experts, top_k=gate.top_k)
    else:
        router = AllExpertsRouter(num)
    core = PERFTLayer(variant=p.variant, base_moe=base_moe, router=router.to(weight.device), experts=experts.to(weight.device), dispatch=dispatch)
    return MoEBlock(core=core, losses=build_losses(cfg.losses) if p.variant == "R" else [])
