"""Adopt an MoE LLM's own sparse-MoE blocks as mmoe MoE layers (``moe.experts.ffn.init: native``).

An HF sparse-MoE block of Mixtral, OLMoE or Qwen3-MoE (transformers 5.x) is a gate ``W_g [E, D]`` and
an expert bank stored fused, ``gate_up_proj [E, 2I, D]`` (gate rows, then up rows) and ``down_proj
[E, D, I]``. It computes, per token ``x``,

    p = softmax(W_g x),  S = top_k(p),  w_e = p_e (/ sum_{e' in S} p_e' if the model renormalises),
    y = sum_{e in S} w_e down_e(act(gate_e x) * up_e x)

(read from each model's ``*TopKRouter`` / ``*Experts`` in transformers' modeling files: Mixtral always
renormalises; OLMoE and Qwen3-MoE do when ``norm_topk_prob``). The adopted layer is an mmoe
``MoELayer`` that computes the same ``y``: a softmax ``TopKRouter`` holding ``W_g`` (group
``routers``) and an ``FFNExperts`` bank holding the same expert weights (group ``experts``), so
stages can train the model's own routers (RoMA, Router Lens) or experts (CEFT). The router scores
in float32 (HF computes the gate's logits in the weights' dtype), so in bf16 the two agree to bf16
rounding and in fp32 to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn

from mmoe.config.errors import ConfigError
from mmoe.moe.config import MoEConfig
from mmoe.moe.core.dispatch import make_dispatch
from mmoe.moe.core.experts import FFNExperts
from mmoe.moe.core.layer import MoEBlock, MoELayer
from mmoe.moe.core.losses import build_losses
from mmoe.moe.core.routers import TopKRouter

# The fused expert layout the bank copies, as HF's ``use_experts_implementation`` declares it on the bank.
NATIVE_LAYOUT = {"is_concatenated": True, "is_transposed": False, "has_bias": False, "has_gate": True, "has_post_expert_norm": False}


class NativeMismatch(ConfigError):
    """``model.moe`` states routing that the LLM's own sparse-MoE blocks do not do."""


def renormalizes(model_type: str, gate: nn.Module) -> bool:
    """Whether the model's gate rescales its top-k weights to sum 1: Mixtral's always does,
    OLMoE's and Qwen3-MoE's when their ``norm_topk_prob`` is set."""
    return True if model_type == "mixtral" else bool(gate.norm_topk_prob)


def _native_routing(block: nn.Module, model_type: str) -> dict[str, int | bool]:
    gate = block.gate
    return {"num_experts": gate.num_experts, "top_k": gate.top_k, "renormalize": renormalizes(model_type, gate)}


def _check(block: nn.Module, cfg: MoEConfig, model_type: str, index: int) -> None:
    """The config's expert count, top-k and renormalisation are the model's; its layout is the one copied."""
    where = f"decoder layer {index} ({type(block).__name__})"
    native = _native_routing(block, model_type)
    if native["top_k"] == 1 and native["renormalize"]:
        raise NativeMismatch(
            f"{where} routes top-1 and renormalises (every weight exactly 1); mmoe's top-1 keeps the gate probability "
            "so the LM loss trains the router, and cannot adopt this gate"
        )
    stated = {"num_experts": cfg.experts.num_experts, "top_k": cfg.router.top_k, "renormalize": cfg.router.renormalize}
    keys = {"num_experts": "moe.experts.num_experts", "top_k": "moe.router.top_k", "renormalize": "moe.router.renormalize"}
    wrong = [f"{keys[k]}={stated[k]} but the model's is {native[k]}" for k in keys if stated[k] != native[k]]
    if wrong:
        raise NativeMismatch(f"moe.experts.ffn.init=native adopts {where} with its routing unchanged: " + "; ".join(wrong))
    layout = {name: getattr(block.experts, name, None) for name in NATIVE_LAYOUT}
    if layout != NATIVE_LAYOUT:
        raise NativeMismatch(f"{where}: its experts' layout {layout} is not the fused layout mmoe copies {NATIVE_LAYOUT}")
    if getattr(block, "jitter_noise", 0.0) > 0:
        raise NativeMismatch(
            f"{where} jitters the experts' inputs as well as the gate's in training (router_jitter_noise="
            f"{block.jitter_noise}), which an mmoe layer does not; set it to 0 (mmoe's moe.router.jitter jitters the router only)"
        )


def adopt_native_block(block: nn.Module, cfg: MoEConfig, *, model_type: str, index: int) -> MoEBlock:
    """An ``MoEBlock`` computing what the HF sparse-MoE ``block`` computes, with its gate as the
    router's weight (``routers``) and its experts as an FFN bank (``experts``)."""
    _check(block, cfg, model_type, index)
    native = block.experts
    experts = FFNExperts.from_fused(gate_up=native.gate_up_proj.detach(), down=native.down_proj.detach(), activation=native.act_fn)
    weight = block.gate.weight
    r = cfg.router
    router = TopKRouter(weight.shape[1], weight.shape[0], top_k=r.top_k, renormalize=r.renormalize, jitter=r.jitter)
    with torch.no_grad():
        router.gate.weight.copy_(weight.float())
    layer = MoELayer(router=router.to(weight.device), experts=experts, dispatch=make_dispatch(cfg.dispatch))
    return MoEBlock(core=layer, losses=build_losses(cfg.losses))
