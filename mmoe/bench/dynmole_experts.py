"""``dynmole_experts``: LoRA experts on a frozen SwiGLU MLP routed by DynMoLE (soft over every expert
for unsure tokens, top-p for the others), forward + backward, routing included: every expert on
every token (``wide``) against only the selected ones (``sparse``: soft tokens through the wide
product, top-p tokens through grouped products) and ``fast`` (the cost rule's choice per call).

Settings: the reference's 6 experts and 16 experts, both ``keep_top_k=2``, ``top_p=0.75``,
threshold 0.9, each with a ``confident`` router (a few per cent soft tokens, as after training) and
an ``unsure`` one (most tokens soft, as at the start); the router gate's scale sets which. The
measured share of soft tokens and experts per token are reported with the times (``plans``).
"""

from __future__ import annotations

import torch

from mmoe.bench.layers import fwd_bwd, gated_mlp, inputs
from mmoe.bench.settings import BenchSettings
from mmoe.bench.timing import compare

SIZES = {
    "tiny": {"dim": 32, "intermediate": 64, "tokens": 64, "rank": 4, "gate_std": {"confident": 0.3, "unsure": 0.1}},
    "cpu": {"dim": 512, "intermediate": 1408, "tokens": 2048, "rank": 16, "gate_std": {"confident": 0.06, "unsure": 0.03}},
    "full": {"dim": 2048, "intermediate": 5632, "tokens": 16384, "rank": 16, "gate_std": {"confident": 0.03, "unsure": 0.015}},
}
EXPERTS = (6, 16)
DISPATCHES = ("wide", "sparse", "fast")


def _layer(base, p: dict, experts: int, gate_std: float, dispatch: str):
    from mmoe.moe.config import LoRAConfig
    from mmoe.moe.core.dispatch import make_dispatch
    from mmoe.moe.core.experts import LoRAExperts
    from mmoe.moe.core.layer import MoELayer
    from mmoe.moe.methods.dynmole import DynMoLERouter

    bank = LoRAExperts.for_mlp(base, LoRAConfig(rank=p["rank"], alpha=2 * p["rank"]), num_experts=experts)
    for delta in bank.deltas.values():
        torch.nn.init.normal_(delta.lora_B, std=0.02)
    router = DynMoLERouter(p["dim"], experts, top_p=0.75, keep_top_k=2, entropy_threshold=0.9, init_std=gate_std)
    return MoELayer(router=router.to(base.gate_proj.weight.device), experts=bank, dispatch=make_dispatch(dispatch))


def _plan_facts(layer, x: torch.Tensor, experts: int) -> dict:
    from mmoe.moe.core.dispatch import VariableSplit, sparse_lora_pays

    with torch.no_grad():
        plan = layer.router(x.detach()).plan
    split = VariableSplit.of(plan, experts)
    return {
        "experts": experts,
        "soft_share": split.num_full / plan.num_tokens,
        "experts_per_token": float(plan.mask.sum()) / plan.num_tokens,
        "top_p_experts_per_token": split.rest_experts_per_token,
        "fast_computes_selected_only": sparse_lora_pays(split.rest_experts_per_token, experts, sorted_rows=False),
    }


def run(settings: BenchSettings) -> dict:
    p = settings.pick(SIZES)
    base = gated_mlp(p["dim"], p["intermediate"], settings, frozen=True)
    x = inputs(p["tokens"], p["dim"], settings)
    variants, ratios, plans = {}, {}, {}
    for experts in EXPERTS:
        for confidence, gate_std in p["gate_std"].items():
            name = f"e{experts}_{confidence}"
            for dispatch in DISPATCHES:
                torch.manual_seed(experts)  # the same router and experts under every dispatch
                layer = _layer(base, p, experts, gate_std, dispatch)
                variants[f"{name}_{dispatch}"] = fwd_bwd(layer, lambda h, layer=layer: layer(h, None, base)[0], x)
            plans[name] = _plan_facts(layer, x, experts)
            ratios |= {f"{name}_{d}/wide": (f"{name}_{d}", f"{name}_wide") for d in ("sparse", "fast")}
    return {"params": p, "plans": plans, **compare(variants, ratios, settings)}
