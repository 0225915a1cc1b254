"""``lora_experts``: a MoLE layer (8 LoRA experts, top-1, r=16) on a frozen SwiGLU MLP, forward +
backward, routing included, against plain LoRA (mmoe's and peft's) and the frozen MLP alone."""

from __future__ import annotations

import copy

from torch import nn

from mmoe.bench.layers import fwd_bwd, gated_mlp, inputs
from mmoe.bench.settings import BenchSettings
from mmoe.bench.timing import compare

SIZES = {
    "tiny": {"dim": 32, "intermediate": 64, "tokens": 64, "experts": 8, "rank": 4},
    "cpu": {"dim": 512, "intermediate": 1408, "tokens": 2048, "experts": 8, "rank": 16},
    "full": {"dim": 2048, "intermediate": 5632, "tokens": 16384, "experts": 8, "rank": 16},
}
TARGETS = ("gate_proj", "up_proj", "down_proj")


def _plain_lora(mlp: nn.Module, rank: int) -> nn.Module:
    from mmoe.moe.core.lora_linear import LoRALinear

    for name in TARGETS:
        setattr(mlp, name, LoRALinear(getattr(mlp, name), rank=rank, alpha=2 * rank))
    return mlp


def _peft_lora(mlp: nn.Module, rank: int) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    holder = nn.Module()
    holder.mlp = mlp
    return get_peft_model(holder, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=list(TARGETS)))


def _mole(mlp: nn.Module, p: dict, dispatch: str) -> nn.Module:
    from mmoe.moe.config import LoRAConfig
    from mmoe.moe.core.dispatch import make_dispatch
    from mmoe.moe.core.experts import LoRAExperts
    from mmoe.moe.core.layer import MoELayer
    from mmoe.moe.core.routers import TopKRouter

    bank = LoRAExperts.for_mlp(mlp, LoRAConfig(rank=p["rank"], alpha=2 * p["rank"]), num_experts=p["experts"])
    router = TopKRouter(p["dim"], p["experts"], top_k=1).to(mlp.gate_proj.weight.device)
    return MoELayer(router=router, experts=bank, dispatch=make_dispatch(dispatch))


def run(settings: BenchSettings) -> dict:
    p = settings.pick(SIZES)
    base = gated_mlp(p["dim"], p["intermediate"], settings, frozen=True)
    x = inputs(p["tokens"], p["dim"], settings)
    plain = _plain_lora(copy.deepcopy(base), p["rank"])
    peft = _peft_lora(copy.deepcopy(base), p["rank"])
    variants = {
        "frozen_mlp": fwd_bwd(base, base, x),
        "lora": fwd_bwd(plain, plain, x),
        "peft_lora": fwd_bwd(peft, lambda h: peft.base_model.model.mlp(h), x),
    }
    for dispatch in ("fast", "wide", "sparse", "loop"):
        layer = _mole(base, p, dispatch)
        variants[f"mole_{dispatch}"] = fwd_bwd(layer, lambda h, layer=layer: layer(h, None, base)[0], x)
    ratios = {f"mole_{d}/lora": (f"mole_{d}", "lora") for d in ("fast", "wide", "sparse", "loop")}
    ratios |= {"mole_fast/peft_lora": ("mole_fast", "peft_lora"), "lora/frozen_mlp": ("lora", "frozen_mlp"),
               "peft_lora/frozen_mlp": ("peft_lora", "frozen_mlp"), "mole_fast/frozen_mlp": ("mole_fast", "frozen_mlp")}
    return {"params": p, "goal": {"ratio": "mole_fast/lora", "at_most": 1.05}, **compare(variants, ratios, settings)}
