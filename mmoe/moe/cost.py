"""Parameter and compute accounting of the expert layers (what ``mmoe info`` prints).

Per token and per expert layer: the parameters a token touches (router, the experts it reaches,
and for LoRA experts the frozen base MLP they adapt), and the forward FLOPs (2 per multiply-add)
of what the dispatch actually computes: a wide LoRA dispatch runs every expert's A and B for every
token, so its FLOPs count all E experts; a sparse one counts only the selected experts
(``Dispatch.lora_experts_computed``). Routers report their expected experts per token
(``expected_experts()``; at uniform routing, as at initialisation, where routing is data-dependent,
with the range in ``experts_range()``) and banks their cost (``cost_per_token()``). Null experts cost nothing:
with ``m`` null experts beside ``n`` true ones a token is expected (at uniform routing, before any
training) to reach ``k * n / (n + m)`` true experts, and the FLOPs this saves against the same ``k``
without null experts are reported (``flops_saved``); training metrics report the measured saving.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from mmoe.moe.core.layer import MoEBlock
from mmoe.moe.methods.parrot import ParrotProjector


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
    computed_params: float
    true_experts_per_token: float
    experts_range: tuple[float, float]
    flops_saved: float
    flops_saved_share: float

    @property
    def flops(self) -> float:
        """Forward FLOPs per token: 2 per multiply-add over the parameters the forward computes with."""
        return 2 * self.computed_params


def _n(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def _layer_cost(*, name: str, group: str, kind: str, router: nn.Module, bank: nn.Module, dispatch, base: nn.Module | None) -> LayerCost:
    """Asks the router how many experts a token reaches and the bank what that costs."""
    k = router.expected_experts()
    k_real = min(k * bank.num_experts / (bank.num_experts + bank.num_null), float(bank.num_experts)) if bank.num_null else k
    one = router.one_expert_per_token()
    active, computed = bank.cost_per_token(k_real, dispatch, assignments_per_token=k, sorted_rows=one)  # the path is chosen for k picks
    without_null = bank.cost_per_token(min(k, float(bank.num_experts)), dispatch, sorted_rows=one)[1]
    fixed = _n(base) + _n(router)
    return LayerCost(
        name=name, group=group, kind=kind, experts=bank.num_experts, null_experts=bank.num_null, experts_per_token=k,
        expert_params=_n(bank), router_params=_n(router), active_params=fixed + active, computed_params=fixed + computed,
        true_experts_per_token=k_real, experts_range=router.experts_range(), flops_saved=2 * (without_null - computed),
        flops_saved_share=(without_null - computed) / without_null if without_null else 0.0,
    )


def moe_costs(model: nn.Module) -> list[LayerCost]:
    """One row per expert layer (per modality group) of every MoE block and Parrot projector."""
    rows = []
    for name, module in model.named_modules():
        if isinstance(module, MoEBlock):
            for group, layer in module.core.expert_layers().items():
                rows.append(_layer_cost(
                    name=name, group=group, kind=layer.experts.label, router=layer.router, bank=layer.experts,
                    dispatch=layer.dispatch, base=module.base,
                ))
        elif isinstance(module, ParrotProjector):
            rows.append(_layer_cost(
                name=name, group="visual", kind=f"parrot/{module.experts.kind}", router=module.router, bank=module.experts,
                dispatch=module.dispatch, base=None,
            ))
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
        "expert layers (active = parameters a token touches; FLOPs = forward as dispatched, 2 per multiply-add):",
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
    for r in rows:
        low, high = r.experts_range
        if low != high:
            lines.append(
                f"  {r.name} {r.group}: experts/token are data-dependent, {low:g} to {high:g}; {r.experts_per_token:.3g} at uniform "
                f"routing (as at initialisation), which the FLOPs above count; measured in training: router stat experts_per_token"
            )
        if r.null_experts:
            lines.append(
                f"  {r.name} {r.group}: null experts: {r.true_experts_per_token:.3g} true experts/token expected at uniform "
                f"routing of k={r.experts_per_token:g}; expert FLOPs saved vs k={r.experts_per_token:g} without null experts: "
                f"{_fmt(r.flops_saved)}/token ({r.flops_saved_share:.1%} of the expert FLOPs; measured in training: router stat expert_flops_saved)"
            )
    return lines
