"""How tokens reach experts. Two interchangeable strategies with identical results:

``LoopDispatch``: one pass per expert over its tokens; the readable correctness reference.
``GroupedDispatch``: full experts get tokens sorted by expert and grouped matrix products
(``torch.nn.functional.grouped_mm`` where it runs, a per-group fallback elsewhere); soft plans use
wide products over all experts' stacked weights; LoRA experts use one product over every expert's
A, a per-token weighting (zero for unselected experts), and one product over every expert's B.

Both touch every real expert's weights on every call, even with no tokens (zero-length products),
so under ZeRO-3 all ranks use the same parameters each step. Null experts (ids at or past the
bank's real experts) are dropped before any compute.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

from mmoe.moe.core.routers import RoutingPlan


class GroupedExperts(Protocol):
    """What a full-expert bank offers a dispatch."""

    num_experts: int

    def expert(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Expert ``index`` on rows ``x``."""

    def grouped(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Rows sorted by expert; ``offsets`` (int32, cumulative ends) delimit each expert's rows."""

    def mixed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``sum_e weights[:, e] * expert_e(x)`` for every token and expert."""


class Dispatch(Protocol):
    dense_lora: bool  # LoRA experts computed for every token (wide products) rather than only the selected ones

    def experts(self, bank: GroupedExperts, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """``y_t = sum_e combine[t, e] * expert_e(x_t)`` over real experts."""

    def lora(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """``d_t = sum_e combine[t, e] * B_e A_e x_t`` with ``a: [E, r, in]``, ``b: [E, out, r]``."""


def _weighted(out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (out * weight.unsqueeze(-1)).to(out.dtype)


class LoopDispatch:
    """Per-expert reference: gather the expert's tokens, run it, scatter-add the weighted result."""

    name = "loop"
    dense_lora = False

    def experts(self, bank: GroupedExperts, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        y = None
        for e in range(bank.num_experts):
            tokens = plan.mask[:, e].nonzero().squeeze(1)
            out = _weighted(bank.expert(e, x[tokens]), plan.combine[tokens, e])
            y = (y if y is not None else out.new_zeros(x.shape[0], out.shape[-1])).index_add(0, tokens, out)
        return y

    def lora(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        y = x.new_zeros(x.shape[0], b.shape[1])
        for e in range(a.shape[0]):
            tokens = plan.mask[:, e].nonzero().squeeze(1)
            out = F.linear(F.linear(x[tokens], a[e]), b[e])
            y = y.index_add(0, tokens, _weighted(out, plan.combine[tokens, e]))
        return y


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the incoming gradient contiguous (grouped_mm rejects expanded grads)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


_GROUPED_MM_OK: dict[tuple[str, torch.dtype], bool] = {}


def _grouped_mm_runs(device: torch.device, dtype: torch.dtype) -> bool:
    """Probe once per (device type, dtype) whether ``F.grouped_mm`` runs forward and backward."""
    key = (device.type, dtype)
    if key not in _GROUPED_MM_OK:
        ok = hasattr(F, "grouped_mm")
        if ok:
            try:
                with torch.enable_grad():
                    a = torch.randn(8, 16, device=device, dtype=dtype, requires_grad=True)
                    w = torch.randn(2, 16, 16, device=device, dtype=dtype, requires_grad=True)
                    offs = torch.tensor([3, 8], dtype=torch.int32, device=device)
                    F.grouped_mm(a, w.transpose(-2, -1), offs=offs).backward(torch.ones(8, 16, device=device, dtype=dtype))
            except (RuntimeError, NotImplementedError):
                ok = False
        _GROUPED_MM_OK[key] = ok
    return _GROUPED_MM_OK[key]


def grouped_linear(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` (sorted by group) times each group's ``weight[g]`` (``[G, out, in]``, nn.Linear layout)."""
    aligned = all((n * x.element_size()) % 16 == 0 for n in (weight.shape[1], weight.shape[2]))
    if aligned and x.dtype == weight.dtype and _grouped_mm_runs(x.device, x.dtype):
        return _ContiguousGrad.apply(F.grouped_mm(x, weight.transpose(-2, -1), offs=offsets))
    counts = torch.diff(offsets, prepend=offsets.new_zeros(1)).tolist()
    parts = [F.linear(chunk, weight[g]) for g, chunk in enumerate(torch.split(x[: offsets[-1]], counts))]
    return torch.cat(parts)


class GroupedDispatch:
    """Sort by expert and run grouped products; soft plans and LoRA experts use wide products."""

    name = "fast"
    dense_lora = True

    def experts(self, bank: GroupedExperts, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        num_real = bank.num_experts
        if plan.dense:
            return bank.mixed(x, plan.combine[:, :num_real])
        tokens, experts, weights = plan.assignments()
        if plan.num_experts > num_real:
            keep = (experts < num_real).nonzero().squeeze(1)
            tokens, experts, weights = tokens[keep], experts[keep], weights[keep]
        order = torch.argsort(experts, stable=True)
        tokens, experts, weights = tokens[order], experts[order], weights[order]
        offsets = torch.cumsum(torch.bincount(experts, minlength=num_real), 0).to(torch.int32)
        out = _weighted(bank.grouped(x[tokens], offsets), weights)
        return out.new_zeros(x.shape[0], out.shape[-1]).index_add(0, tokens, out)

    def lora(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        num, rank, width = a.shape
        h = F.linear(x, a.reshape(num * rank, width)).view(-1, num, rank)
        h = h * plan.combine[:, :num, None].to(h.dtype)
        return F.linear(h.reshape(-1, num * rank), b.permute(1, 0, 2).reshape(b.shape[1], num * rank))


def make_dispatch(kind: str) -> Dispatch:
    return GroupedDispatch() if kind == "fast" else LoopDispatch()
