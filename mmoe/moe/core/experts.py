"""Expert banks: what an expert is.

``FFNExperts``: E full MLPs (gated gate/up/down, or two-linear), weights stacked ``[E, out, in]``.
``LoRAExperts``: E low-rank deltas on each target linear of a frozen gate/up/down MLP.
Null experts (AdaMoE) are extra routable ids past a bank's ``num_experts``: they output zero and
cost nothing, because a dispatch drops them before any compute.

A bank is called as ``bank(x, plan, dispatch, base)`` and reads its weights only inside that call,
so ZeRO-3's per-module parameter gathering sees them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmoe.moe.config import ExpertsConfig, LoRAConfig
from mmoe.moe.core.dispatch import Dispatch, grouped_linear
from mmoe.moe.core.routers import RoutingPlan

ACTIVATIONS = {
    "silu": lambda: nn.SiLU(),
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": lambda: nn.ReLU(),
}


def _linear_init(weight: torch.Tensor, std: float | None) -> None:
    """Per-expert init: Gaussian with ``std``, or nn.Linear's default when ``std`` is None."""
    for w in weight:
        if std is None:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        else:
            nn.init.normal_(w, std=std)


class FFNExperts(nn.Module):
    """E MLP experts. ``glu``: ``down(act(gate x) * up x)``; ``mlp``: ``down(act(up x))``."""

    def __init__(
        self,
        *,
        num_experts: int,
        hidden: int,
        intermediate: int,
        kind: str = "glu",
        activation: nn.Module | None = None,
        num_null: int = 0,
        init_std: float | None = 0.02,
        dtype: torch.dtype | None = None,
        group: str = "experts",
    ) -> None:
        super().__init__()
        self.num_experts, self.num_null, self.kind, self.group = num_experts, num_null, kind, group
        self.hidden, self.intermediate = hidden, intermediate
        self.act = activation if activation is not None else (nn.SiLU() if kind == "glu" else nn.GELU())
        shape_in, shape_out = (num_experts, intermediate, hidden), (num_experts, hidden, intermediate)
        self.gate_proj = nn.Parameter(torch.empty(shape_in, dtype=dtype)) if kind == "glu" else None
        self.up_proj = nn.Parameter(torch.empty(shape_in, dtype=dtype))
        self.down_proj = nn.Parameter(torch.empty(shape_out, dtype=dtype))
        for weight in self.weights():
            _linear_init(weight.data, init_std)

    def weights(self) -> list[nn.Parameter]:
        return [w for w in (self.gate_proj, self.up_proj, self.down_proj) if w is not None]

    def expert_parameters(self) -> list[nn.Parameter]:
        """Every parameter, each stacked ``[E, ...]`` with expert e's weights at index e (CEFT masks by it)."""
        return self.weights()

    @property
    def label(self) -> str:
        return f"ffn/{self.kind}"

    def declared_groups(self) -> dict[str, str]:
        return {name: self.group for name in ("gate_proj", "up_proj", "down_proj") if getattr(self, name) is not None}

    def cost_per_token(
        self, experts_per_token: float, dispatch: Dispatch, assignments_per_token: float | None = None, *, sorted_rows: bool,
    ) -> tuple[float, float]:
        """(parameters a token touches, parameters its forward computes with): the experts it reaches."""
        active = experts_per_token * self.params_per_expert
        return active, active

    @property
    def params_per_expert(self) -> int:
        return sum(w[0].numel() for w in self.weights())

    @classmethod
    def upcycle(cls, dense: nn.Module, *, num_experts: int, noise: float = 0.0, num_null: int = 0) -> "FFNExperts":
        """Copy a dense gate/up/down MLP into every expert, plus ``noise`` x std(W) Gaussian noise."""
        gate, up, down = dense.gate_proj.weight, dense.up_proj.weight, dense.down_proj.weight
        bank = cls(
            num_experts=num_experts, hidden=gate.shape[1], intermediate=gate.shape[0], kind="glu",
            activation=dense.act_fn, num_null=num_null, dtype=gate.dtype,
        )
        with torch.no_grad():
            for mine, source in ((bank.gate_proj, gate), (bank.up_proj, up), (bank.down_proj, down)):
                mine.copy_(source.detach().unsqueeze(0).expand_as(mine))
                if noise > 0:
                    mine.add_(torch.randn_like(mine) * noise * source.float().std().to(mine.dtype))
        return bank.to(gate.device)

    @classmethod
    def from_fused(cls, *, gate_up: torch.Tensor, down: torch.Tensor, activation: nn.Module) -> "FFNExperts":
        """Glu experts with exactly the given stacked weights: ``gate_up [E, 2I, D]`` (gate rows first,
        then up, as HF stores MoE experts) and ``down [E, D, I]``. Built on the meta device and then
        allocated where the weights are, so no time goes into an init that is overwritten."""
        num, inter, hidden = gate_up.shape[0], gate_up.shape[1] // 2, gate_up.shape[2]
        with torch.device("meta"):
            bank = cls(num_experts=num, hidden=hidden, intermediate=inter, kind="glu", activation=activation, dtype=gate_up.dtype)
        bank = bank.to_empty(device=gate_up.device)
        with torch.no_grad():
            bank.gate_proj.copy_(gate_up[:, :inter])
            bank.up_proj.copy_(gate_up[:, inter:])
            bank.down_proj.copy_(down)
        return bank

    def _hidden(self, up: torch.Tensor, gate: torch.Tensor | None) -> torch.Tensor:
        return self.act(gate) * up if gate is not None else self.act(up)

    def expert(self, index: int, x: torch.Tensor) -> torch.Tensor:
        gate = F.linear(x, self.gate_proj[index]) if self.gate_proj is not None else None
        return F.linear(self._hidden(F.linear(x, self.up_proj[index]), gate), self.down_proj[index])

    def grouped(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        gate = grouped_linear(x, self.gate_proj, offsets) if self.gate_proj is not None else None
        return grouped_linear(self._hidden(grouped_linear(x, self.up_proj, offsets), gate), self.down_proj, offsets)

    def mixed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        num, inter = self.num_experts, self.intermediate

        def wide(w: torch.Tensor) -> torch.Tensor:
            return F.linear(x, w.reshape(num * inter, self.hidden)).view(-1, num, inter)

        h = self._hidden(wide(self.up_proj), wide(self.gate_proj) if self.gate_proj is not None else None)
        h = (h * weights.unsqueeze(-1)).to(h.dtype)
        return F.linear(h.reshape(-1, num * inter), self.down_proj.permute(1, 0, 2).reshape(self.hidden, num * inter))

    def forward(self, x: torch.Tensor, plan: RoutingPlan, dispatch: Dispatch, base: nn.Module | None = None) -> torch.Tensor:
        return dispatch.experts(self, x, plan)


class LoRADelta(nn.Module):
    """E low-rank deltas for one linear: ``sum_e w_e B_e A_e x`` (``A: [E, r, in]``, ``B: [E, out, r]``, B zero-init)."""

    def __init__(self, *, num_experts: int, rank: int, fan_in: int, fan_out: int, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.lora_A = nn.Parameter(torch.empty(num_experts, rank, fan_in, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(num_experts, fan_out, rank, dtype=dtype))
        _linear_init(self.lora_A.data, None)

    def declared_groups(self) -> dict[str, str]:
        return {"lora_A": "experts", "lora_B": "experts"}

    def forward(self, x: torch.Tensor, plan: RoutingPlan, dispatch: Dispatch) -> torch.Tensor:
        return dispatch.lora(x, self.lora_A, self.lora_B, plan)


class LoRAExperts(nn.Module):
    """E LoRA deltas per target linear of a frozen gated MLP (LLaVA-MoLE, MixLoRA-style per-block routing).

    Each target linear computes ``W x + (alpha / r) * sum_e w_e B_e A_e dropout(x)`` with the token's
    routing weights ``w``; the base MLP's own weights and activation are used unchanged. With one
    expert of weight 1 this is exactly a plain LoRA on those linears.
    """

    def __init__(
        self,
        *,
        shapes: dict[str, tuple[int, int]],
        num_experts: int,
        rank: int,
        alpha: float,
        dropout: float = 0.0,
        num_null: int = 0,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_experts, self.num_null, self.rank = num_experts, num_null, rank
        self.scaling = alpha / rank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.deltas = nn.ModuleDict(
            {
                name: LoRADelta(num_experts=num_experts, rank=rank, fan_in=fan_in, fan_out=fan_out, dtype=dtype)
                for name, (fan_in, fan_out) in shapes.items()
            }
        )

    @property
    def params_per_expert(self) -> int:
        return sum(p[0].numel() for p in self.deltas.parameters())

    def expert_parameters(self) -> list[nn.Parameter]:
        """Every parameter, each stacked ``[E, ...]`` with expert e's weights at index e (CEFT masks by it)."""
        return list(self.deltas.parameters())

    label = "lora"

    def cost_per_token(
        self, experts_per_token: float, dispatch: Dispatch, assignments_per_token: float | None = None, *, sorted_rows: bool,
    ) -> tuple[float, float]:
        """(parameters a token touches, parameters its forward computes with). A wide LoRA dispatch
        runs every expert's A and B for every token and zeroes the unselected ones, so it computes
        with all E experts however few are selected; the dispatch says which it does, deciding on
        ``assignments_per_token`` (null picks included; default ``experts_per_token``) and on
        ``sorted_rows`` (the router's plans give each token exactly one expert)."""
        active = experts_per_token * self.params_per_expert
        computed = dispatch.lora_experts_computed(experts_per_token, self.num_experts, assignments_per_token, sorted_rows=sorted_rows)
        return active, computed * self.params_per_expert

    @classmethod
    def for_mlp(cls, dense: nn.Module, lora: LoRAConfig, *, num_experts: int, num_null: int = 0) -> "LoRAExperts":
        linears = {name: getattr(dense, name) for name in lora.targets}
        shapes = {name: (lin.in_features, lin.out_features) for name, lin in linears.items()}
        weight = next(iter(linears.values())).weight
        bank = cls(
            shapes=shapes, num_experts=num_experts, rank=lora.rank, alpha=lora.alpha, dropout=lora.dropout,
            num_null=num_null, dtype=weight.dtype,
        )
        return bank.to(weight.device)

    def _project(self, base: nn.Module, name: str, x: torch.Tensor, delta) -> torch.Tensor:
        out = getattr(base, name)(x)
        if name not in self.deltas:
            return out
        return out + (delta(self.dropout(x), self.deltas[name]) * self.scaling).to(out.dtype)

    def _mlp(self, base: nn.Module, x: torch.Tensor, delta) -> torch.Tensor:
        hidden = base.act_fn(self._project(base, "gate_proj", x, delta)) * self._project(base, "up_proj", x, delta)
        return self._project(base, "down_proj", hidden, delta)

    def forward(self, x: torch.Tensor, plan: RoutingPlan, dispatch: Dispatch, base: nn.Module | None = None) -> torch.Tensor:
        if base is None:
            raise ValueError("LoRA experts adapt a base MLP; none was given")
        rows = dispatch.lora_rows(plan, self.num_experts)
        if rows is None:
            return self._mlp(base, x, lambda h, d: d(h, plan, dispatch))
        # one expert per token: the whole MLP on rows sorted by expert, then the tokens put back
        return rows.unsort(self._mlp(base, rows.sort(x), lambda h, d: rows.delta(h, d.lora_A, d.lora_B)))


def build_experts(cfg: ExpertsConfig, dense: nn.Module, *, num_experts: int) -> nn.Module:
    """An expert bank from an ``ExpertsConfig`` for the dense gate/up/down MLP it replaces or adapts."""
    null = cfg.num_null_experts
    if cfg.type == "lora":
        return LoRAExperts.for_mlp(dense, cfg.lora, num_experts=num_experts, num_null=null)
    ffn = cfg.ffn
    dense_inter = dense.gate_proj.out_features
    if ffn.init == "upcycle":
        if ffn.intermediate_size not in (None, dense_inter):
            raise ValueError(
                f"moe.experts.ffn.init=upcycle copies the dense FFN (intermediate size {dense_inter}); "
                f"intermediate_size={ffn.intermediate_size} needs init=random"
            )
        bank = FFNExperts.upcycle(dense, num_experts=num_experts, noise=ffn.noise, num_null=null)
        if ffn.activation is not None:
            bank.act = ACTIVATIONS[ffn.activation]()
        return bank
    weight = dense.gate_proj.weight
    bank = FFNExperts(
        num_experts=num_experts, hidden=weight.shape[1], intermediate=ffn.intermediate_size or dense_inter, kind=ffn.kind,
        activation=ACTIVATIONS[ffn.activation]() if ffn.activation else None, num_null=null, init_std=ffn.init_std,
        dtype=weight.dtype,
    )
    return bank.to(weight.device)
