"""``ffn_experts``: full SwiGLU experts (8, top-1 / top-2 / expert choice / null experts / modality
groups), routing included, forward + backward, against dense MLPs of equal active FLOPs."""

from __future__ import annotations

import torch

from mmoe.bench.layers import fwd_bwd, gated_mlp, inputs
from mmoe.bench.settings import BenchSettings
from mmoe.bench.timing import compare

SIZES = {
    "tiny": {"dim": 32, "intermediate": 64, "tokens": 64, "experts": 8, "null_experts": 2},
    "cpu": {"dim": 384, "intermediate": 768, "tokens": 2048, "experts": 8, "null_experts": 2},
    "full": {"dim": 1024, "intermediate": 4096, "tokens": 16384, "experts": 8, "null_experts": 2},
}


def _layer(p: dict, settings: BenchSettings, router_kind: str, *, experts: int, null: int = 0, dispatch: str = "fast"):
    from mmoe.moe.core.dispatch import make_dispatch
    from mmoe.moe.core.experts import FFNExperts
    from mmoe.moe.core.layer import MoELayer
    from mmoe.moe.core.routers import ExpertChoiceRouter, TopKRouter

    routable = experts + null
    if router_kind == "expert_choice":
        router = ExpertChoiceRouter(p["dim"], routable, capacity_factor=2.0)
    else:
        router = TopKRouter(p["dim"], routable, top_k=int(router_kind[-1]))
    bank = FFNExperts(num_experts=experts, hidden=p["dim"], intermediate=p["intermediate"], num_null=null)
    layer = MoELayer(router=router, experts=bank, dispatch=make_dispatch(dispatch))
    return layer.to(device=settings.device, dtype=settings.dtype)


def _groups(p: dict, settings: BenchSettings):
    from mmoe.moe.methods.moma import ModalityGroups

    half = p["experts"] // 2
    return ModalityGroups({g: _layer(p, settings, "top2", experts=half) for g in ("text", "image")})


def run(settings: BenchSettings) -> dict:
    from mmoe.moe.core.routers import TokenInfo

    p = settings.pick(SIZES)
    x = inputs(p["tokens"], p["dim"], settings)
    flat = torch.arange(p["tokens"], device=settings.device)
    tokens = TokenInfo(flat // 256, flat % 256, (flat % 256 < 128).long())  # half of each sequence is image tokens
    dense1 = gated_mlp(p["dim"], p["intermediate"], settings, frozen=False)
    dense2 = gated_mlp(p["dim"], 2 * p["intermediate"], settings, frozen=False)
    layers = {
        "top1": _layer(p, settings, "top1", experts=p["experts"]),
        "top2": _layer(p, settings, "top2", experts=p["experts"]),
        "top2_loop": _layer(p, settings, "top2", experts=p["experts"], dispatch="loop"),
        "expert_choice": _layer(p, settings, "expert_choice", experts=p["experts"]),
        "top2_null": _layer(p, settings, "top2", experts=p["experts"], null=p["null_experts"]),
        "groups_top2": _groups(p, settings),
    }
    variants = {"dense_ff": fwd_bwd(dense1, dense1, x), "dense_2ff": fwd_bwd(dense2, dense2, x)}
    for name, layer in layers.items():
        variants[name] = fwd_bwd(layer, lambda h, layer=layer: layer(h, tokens)[0], x)
    ratios = {
        "top1/dense_ff": ("top1", "dense_ff"),
        "top2/dense_2ff": ("top2", "dense_2ff"),
        "top2_loop/dense_2ff": ("top2_loop", "dense_2ff"),
        "expert_choice/top2": ("expert_choice", "top2"),
        "top2_null/top2": ("top2_null", "top2"),
        "groups_top2/top2": ("groups_top2", "top2"),
        "top2_loop/top2": ("top2_loop", "top2"),
    }
    goal = {"ratio": "top2/dense_2ff", "at_most": 1.3, "within_top_k": {"ratios": ["expert_choice/top2", "top2_null/top2", "groups_top2/top2"], "at_most": 1.2}}
    return {"params": p, "goal": goal, **compare(variants, ratios, settings)}
