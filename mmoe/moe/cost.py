"""Parameter and compute accounting of the expert layers (what ``mmoe info`` prints).

Per token and per expert layer: the parameters a token touches (router, the experts it reaches,
and for LoRA experts the frozen base MLP they adapt) and the forward FLOPs (2 per multiply-add).
Expected experts per token: ``k`` (token choice), ``capacity_factor`` (expert choice, on
average), all (soft), 1 (no router). Null experts cost nothing and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from mmoe.moe.experts import LoRAExperts
from mmoe.moe.groups import ModalityGroups
from mmoe.moe.layer import MoEBlock, MoELayer
from mmoe.moe.moma import AuxRoutedRouter
from mmoe.moe.parrot import ParrotProjector
from mmoe.moe.routers import ExpertChoiceRouter, FixedRouter, SoftRouter, TopKRouter


@dataclass
class LayerCost:
    name: str
    group: str
    kind: str
    experts: int
    null_experts: int
    experts_per_token: float
    expert_params: int
    router_params: int
    active_params: float
    flops: float


def _n(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def experts_per_token(router: nn.Module) -> float:
    if isinstance(router, AuxRoutedRouter):
        return experts_per_token(router.main)
    if isinstance(router, TopKRouter):
        return float(router.top_k)
    if isinstance(router, ExpertChoiceRouter):
        return float(router.capacity_factor)
    if isinstance(router, SoftRouter):
        return float(router.num_experts)
    if isinstance(router, FixedRouter):
        return 1.0
    raise TypeError(f"no cost model for router {type(router).__name__}")


def _layer_cost(name: str, group: str, layer: MoELayer, base: nn.Module | None) -> LayerCost:
    bank = layer.experts
    k = experts_per_token(layer.router)
    real_share = bank.num_experts / (bank.num_experts + bank.num_null)
    k_real = min(k * real_share, float(bank.num_experts)) if bank.num_null else k
    base_params = _n(base) if isinstance(bank, LoRAExperts) else 0
    router = _n(layer.router)
    active = base_params + router + k_real * bank.params_per_expert
    kind = "lora" if isinstance(bank, LoRAExperts) else f"ffn/{bank.kind}"
    return LayerCost(name, group, kind, bank.num_experts, bank.num_null, k, _n(bank), router, active, 2 * active)


def moe_costs(model: nn.Module) -> list[LayerCost]:
    """One row per expert layer (per modality group) of every MoE block and Parrot projector."""
    rows = []
    for name, module in model.named_modules():
        if isinstance(module, MoEBlock):
            groups = module.core.groups.items() if isinstance(module.core, ModalityGroups) else [("-", module.core)]
            rows += [_layer_cost(name, group, layer, module.base) for group, layer in groups]
        elif isinstance(module, ParrotProjector):
            bank = module.experts
            k = experts_per_token(module.router)
            active = k * bank.params_per_expert
            rows.append(LayerCost(name, "visual", f"parrot/{bank.kind}", bank.num_experts, 0, k, _n(bank), _n(module.router), active, 2 * active))
    return rows


def _fmt(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def format_costs(rows: list[LayerCost]) -> list[str]:
    """A table: experts, expert parameters, active parameters and FLOPs per token, per layer."""
    if not rows:
        return []
    lines = [
        "expert layers (active = touched per token; FLOPs = forward, 2 per multiply-add):",
        f"  {'layer':<26}{'group':<8}{'kind':<12}{'experts':>8}{'k':>6}{'expert params':>15}{'router':>9}{'active/token':>14}{'FLOPs/token':>13}",
    ]
    for r in rows:
        experts = f"{r.experts}+{r.null_experts}n" if r.null_experts else str(r.experts)
        lines.append(
            f"  {r.name:<26}{r.group:<8}{r.kind:<12}{experts:>8}{r.experts_per_token:>6g}{_fmt(r.expert_params):>15}"
            f"{_fmt(r.router_params):>9}{_fmt(r.active_params):>14}{_fmt(r.flops):>13}"
        )
    total = sum(r.expert_params + r.router_params for r in rows)
    lines.append(f"  total expert + router parameters: {_fmt(total)}")
    return lines
