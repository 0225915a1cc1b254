"""``routing_methods``: each per-token routing method on main against plain top-k over the same expert
bank, forward + backward, routing included, in one process: Mixture of Routers, GW-MoE (training:
uncertain tokens broadcast; eval: the wrapped top-k alone), DynMoLE (entropy-switched soft / top-p),
AdaMoE (top-k over true + null experts, renormalised over the true ones) and, for FFN experts,
FactorLLM (split experts, hard weights, the prior-approximate teacher in training).

Layers are built from ``MoEConfig`` by ``build_block`` (what a model gets) and called through their
core. Both banks of the other layer cases are used: LoRA experts on a frozen SwiGLU MLP (the MoLE
setting DynMoLE, MoR and GW-MoE come from) and full SwiGLU experts.

How much an entropy-switched method costs depends on how peaked its router is, so the gate is
initialised with std ``logit_std / sqrt(dim)`` (unit-variance inputs give logits of std
``logit_std``): 1.0 by default, where DynMoLE's and GW-MoE's default threshold 0.9 broadcasts about a
fifth of the tokens, and 2.0 for the ``*_confident`` variants (about 1 %). Each variant's measured
experts per token and broadcast share are reported under ``routing``.
"""

from __future__ import annotations

import math

import torch

from mmoe.bench.layers import fwd_bwd, gated_mlp, inputs
from mmoe.bench.settings import BenchSettings
from mmoe.bench.timing import compare

SIZES = {
    "tiny": {"lora_dim": 32, "lora_intermediate": 64, "ffn_dim": 32, "ffn_intermediate": 64, "tokens": 64,
             "experts": 8, "rank": 4, "null_experts": 2, "routers": 4},
    "cpu": {"lora_dim": 512, "lora_intermediate": 1408, "ffn_dim": 384, "ffn_intermediate": 768, "tokens": 2048,
            "experts": 8, "rank": 16, "null_experts": 2, "routers": 4},
    "full": {"lora_dim": 2048, "lora_intermediate": 5632, "ffn_dim": 1024, "ffn_intermediate": 4096, "tokens": 16384,
             "experts": 8, "rank": 16, "null_experts": 2, "routers": 4},
}
LOGIT_STD = {"": 1.0, "_confident": 2.0}
WITHIN = 1.2  # the goal: each routing method within 1.2x of plain top-k

# variant -> (model.moe overrides, the plain top-k variant it is compared with); all in training mode
# except ``*_eval``. ``split_top2`` is FactorLLM's layer (split experts, its router) without the
# prior-approximate loss, i.e. its plain top-2 routing.
METHODS = {
    "top2": ({"router": {"top_k": 2}}, None),
    "mor_top2": ({"router": {"type": "mor", "top_k": 2}}, "top2"),
    "gw_top2": ({"router": {"top_k": 2, "gw": {}}}, "top2"),
    "gw_top2_confident": ({"router": {"top_k": 2, "gw": {}}}, "top2"),
    "gw_top2_eval": ({"router": {"top_k": 2, "gw": {}}}, "top2"),
    "dynmole": ({"router": {"type": "dynmole"}}, "top2"),
    "dynmole_confident": ({"router": {"type": "dynmole"}}, "top2"),
    "adamoe_top2": ({"router": {"top_k": 2}, "adamoe": {}}, "top2"),
}
FFN_ONLY = {
    "split_top2": ({"router": {"top_k": 2}}, None),
    "factorllm_top2": ({"router": {"top_k": 2}, "factorllm": {}}, "split_top2"),
}


def _logit_std(variant: str) -> float:
    return LOGIT_STD["_confident" if variant.endswith("_confident") else ""]


def _config(variant: str, bank: str, p: dict, dim: int):
    from mmoe.moe.config import MoEConfig

    moe = dict((METHODS | FFN_ONLY)[variant][0])
    experts: dict = {"type": bank, "num_experts": p["experts"]}
    if bank == "lora":
        experts["lora"] = {"rank": p["rank"], "alpha": 2 * p["rank"]}
    if "adamoe" in moe:
        experts["num_null_experts"] = p["null_experts"]
    if variant in FFN_ONLY:
        experts["ffn"] = {"init": "split"}
    if variant == "split_top2":
        moe["factorllm"] = {}
    moe["router"] = {**moe["router"], "init_std": _logit_std(variant) / math.sqrt(dim)}
    return MoEConfig.model_validate({"experts": experts, **moe})


def _layer(variant: str, bank: str, p: dict, settings: BenchSettings):
    """The variant's expert layer (the block's core) as ``call(x, tokens) -> (y, routed)``, and the module."""
    from mmoe.moe.core.layer import MoELayer
    from mmoe.moe.integration.build import build_block

    dim, inter = (p["lora_dim"], p["lora_intermediate"]) if bank == "lora" else (p["ffn_dim"], p["ffn_intermediate"])
    dense = gated_mlp(dim, inter, settings, frozen=bank == "lora")
    block = build_block(dense, _config(variant, bank, p, dim)).to(device=settings.device, dtype=settings.dtype)
    block.train(not variant.endswith("_eval"))
    core = block.core
    if variant == "split_top2":  # FactorLLM's split bank and router without its teacher loss
        core = MoELayer(router=core.router, experts=core.experts, dispatch=core.dispatch)
    return (lambda x, tokens: core(x, tokens, block.base)), block


def _routing(call, x: torch.Tensor, tokens) -> dict[str, float]:
    """Real experts per token and the share of tokens sent to every real expert, on the bench input."""
    with torch.no_grad():
        _, routed = call(x, tokens)
    (r,) = routed.values()
    per_token = r.out.plan.mask[:, : r.num_real].sum(-1).float()
    return {"experts_per_token": float(per_token.mean()), "all_experts_share": float((per_token == r.num_real).float().mean())}


def run(settings: BenchSettings) -> dict:
    from mmoe.moe.core.routers import TokenInfo

    p = settings.pick(SIZES)
    flat = torch.arange(p["tokens"], device=settings.device)
    tokens = TokenInfo(flat // 256, flat % 256, torch.zeros_like(flat))
    variants, ratios, routing = {}, {}, {}
    for bank in ("lora", "ffn"):
        x = inputs(p["tokens"], p[f"{bank}_dim"], settings)
        methods = METHODS | (FFN_ONLY if bank == "ffn" else {})
        for name, (_, baseline) in methods.items():
            call, module = _layer(name, bank, p, settings)
            label = f"{bank}/{name}"
            variants[label] = fwd_bwd(module, lambda h, call=call: call(h, tokens)[0], x)
            routing[label] = _routing(call, x, tokens)
            if baseline is not None:
                ratios[f"{label}/{baseline}"] = (label, f"{bank}/{baseline}")
    goal = {"ratios": sorted(ratios), "at_most": WITHIN}
    return {"params": {**p, "logit_std": LOGIT_STD}, "goal": goal, **compare(variants, ratios, settings), "routing": routing}
