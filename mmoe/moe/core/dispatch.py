"""How tokens reach experts. Interchangeable strategies with identical results:

``LoopDispatch`` (``loop``): one pass per expert over its tokens; the readable correctness reference.
``GroupedDispatch``: full experts get tokens sorted by expert and grouped matrix products
(``torch.nn.functional.grouped_mm`` where it runs, a per-group fallback elsewhere); soft plans use
wide products over all experts' stacked weights. LoRA experts are computed one of two ways:

- *wide* (``wide``): one product over every expert's A, a per-token weighting (zero for unselected
  experts), one product over every expert's B: every token computes all E experts;
- *sparse* (``sparse``): assignments sorted by expert and grouped products over only the selected
  experts; for a one-expert-per-token plan the bank runs its whole MLP on the sorted rows
  (``SortedRows``), so the only extra work over a plain LoRA is one gather and one scatter per block.
  A plan with a variable number of experts per token (DynMoLE's soft-or-top-p, GW-MoE's broadcast)
  is split: tokens routed to every expert take the wide product, the others the grouped one;
- ``fast`` chooses per call by ``sparse_lora_pays``, for a variable plan on the mean experts of
  its tokens that are not routed to every expert (counted from the mask: one host sync).

Both touch every real expert's weights on every call, even with no tokens (zero-length products),
so under ZeRO-3 all ranks use the same parameters each step. Null experts (ids at or past the
bank's real experts) are dropped before any compute.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    def lora_experts_computed(
        self, experts_per_token: float, num_experts: int, assignments_per_token: float | None = None, *, sorted_rows: bool,
    ) -> float:
        """How many of a LoRA bank's ``num_experts`` a token's forward computes with (cost accounting)
        when it reaches ``experts_per_token`` real experts in a plan of ``assignments_per_token``
        assignments per token (null experts included; default: the same), which decides the path;
        ``sorted_rows``: the plan gives every token exactly one expert (the router declares it)."""

    def lora_rows(self, plan: RoutingPlan, num_real: int) -> "SortedRows | None":
        """Rows sorted by expert when a LoRA bank may run its whole MLP in that order, else None."""

    def experts(self, bank: GroupedExperts, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """``y_t = sum_e combine[t, e] * expert_e(x_t)`` over real experts."""

    def lora(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """``d_t = sum_e combine[t, e] * B_e A_e x_t`` with ``a: [E, r, in]``, ``b: [E, out, r]``."""


def _weighted(out: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (out * weight.unsqueeze(-1)).to(out.dtype)


class LoopDispatch:
    """Per-expert reference: gather the expert's tokens, run it, scatter-add the weighted result."""

    name = "loop"

    def lora_experts_computed(
        self, experts_per_token: float, num_experts: int, assignments_per_token: float | None = None, *, sorted_rows: bool,
    ) -> float:
        return experts_per_token

    def lora_rows(self, plan: RoutingPlan, num_real: int) -> None:
        return None

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


class _PermutedRows(torch.autograd.Function):
    """Rows ``x[order]`` for a permutation ``order``; its backward is the inverse permutation (a
    gather) instead of ``index_select``'s scatter-add, which is serial on CPU."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(order)
        return x.index_select(0, order)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (order,) = ctx.saved_tensors
        inverse = torch.empty_like(order).scatter_(0, order, torch.arange(order.numel(), device=order.device))
        return grad.index_select(0, inverse), None


def permute_rows(x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Rows ``x[order]`` where ``order`` is a permutation of the rows of ``x``."""
    return _PermutedRows.apply(x, order)


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


def grouped_linear(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor, *, grouped_mm: bool = True) -> torch.Tensor:
    """Rows of ``x`` (sorted by group) times each group's ``weight[g]`` (``[G, out, in]``, nn.Linear layout).

    ``F.grouped_mm`` where it runs (16-byte aligned widths, one dtype, the probe passed); else, or
    with ``grouped_mm=False`` (the reference), one ``F.linear`` per group.
    """
    aligned = all((n * x.element_size()) % 16 == 0 for n in (weight.shape[1], weight.shape[2]))
    if grouped_mm and aligned and x.dtype == weight.dtype and _grouped_mm_runs(x.device, x.dtype):
        return _ContiguousGrad.apply(F.grouped_mm(x, weight.transpose(-2, -1), offs=offsets))
    counts = torch.diff(offsets, prepend=offsets.new_zeros(1)).tolist()
    parts = [F.linear(chunk, weight[g]) for g, chunk in enumerate(torch.split(x[: offsets[-1]], counts))]
    return torch.cat(parts)


SPARSE_LORA_FACTOR = 5.0
SORTED_ROWS_FACTOR = 2.0


def sparse_lora_pays(experts_per_token: float, num_experts: int, *, sorted_rows: bool) -> bool:
    """The cost rule: compute only the selected LoRA experts when a token uses at most 1/5 of them,
    or, for a plan of exactly one expert per token (``sorted_rows``: the bank may run its whole MLP on
    rows sorted by expert), whenever there are at least 2. The caller states which plan it has; a
    variable plan whose mean happens to be 1.0 gathers and scatters, so it takes the factor of 5.

    The wide product costs ``E`` experts per token in large, efficient products; the sparse one
    costs ``k`` experts in E small products plus a gather of the inputs and a scatter of the outputs
    at every target linear. One expert per token instead sorts the block's rows once and runs the
    whole MLP on them (``SortedRows``), which is cheaper. Measured on CPU on a frozen SwiGLU MLP
    (docs/benchmarks.md, "Where the LoRA cost rule switches"): with k >= 2 and for DynMoLE's
    variable plans the crossover lies between E/6 and E/3 selected experts, and a factor of 5 picks
    the faster path in 31 of 35 rows (at most 1.09x slower in the other four); one expert per token
    is as fast sorted at 2 and 3 experts (0.95-0.99x) and faster from 4 (0.75-0.92x).
    """
    factor = SORTED_ROWS_FACTOR if sorted_rows else SPARSE_LORA_FACTOR
    return experts_per_token * factor <= num_experts


def sorted_assignments(plan: RoutingPlan, num_real: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(tokens, weights, offsets, order)`` of the plan's assignments to real experts, sorted by expert.

    ``offsets`` are int32 cumulative ends per real expert; ``order`` maps sorted rows to the plan's
    assignment list (token-major). Null-expert assignments sort last and are left out.
    """
    tokens, experts, weights = plan.assignments()
    order = torch.argsort(experts, stable=True)
    counts = torch.bincount(experts, minlength=plan.num_experts)
    offsets = torch.cumsum(counts[:num_real], 0).to(torch.int32)
    if plan.num_experts > num_real:
        order = order[: int(offsets[-1])]
    return tokens[order], weights[order], offsets, order


@dataclass
class SortedRows:
    """A one-expert-per-token plan as a permutation: row i of the sorted batch is token ``order[i]``.

    Rows of real experts come first, grouped by expert (``offsets``); rows routed to null experts
    follow and get no delta. A LoRA bank runs its base MLP on ``x[order]`` unchanged and adds
    ``delta`` to each target linear, then ``unsort`` puts the tokens back.
    """

    order: torch.Tensor
    weights: torch.Tensor
    offsets: torch.Tensor
    num_rows: int
    num_real_rows: int | None  # None: every row has a real expert

    def sort(self, x: torch.Tensor) -> torch.Tensor:
        return permute_rows(x, self.order)

    def delta(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``w_t B_e A_e x_t`` for the sorted rows ``x`` (zero for null-expert rows)."""
        rows = x if self.num_real_rows is None else x[: self.num_real_rows]
        h = grouped_linear(rows, a, self.offsets)
        out = grouped_linear((h * self.weights.unsqueeze(-1)).to(h.dtype), b, self.offsets)
        if self.num_real_rows is None:
            return out
        return torch.cat([out, out.new_zeros(self.num_rows - self.num_real_rows, out.shape[-1])])

    def unsort(self, y: torch.Tensor) -> torch.Tensor:
        return y.new_empty(y.shape).index_copy(0, self.order, y)


class GroupedDispatch:
    """Sort by expert and run grouped products; soft plans use wide products; LoRA experts ``lora``:
    ``wide``, ``sparse`` or ``auto`` (``sparse_lora_pays``)."""

    def __init__(self, lora: str = "auto") -> None:
        if lora not in ("auto", "wide", "sparse"):
            raise ValueError(f"unknown LoRA dispatch '{lora}' (auto, wide, sparse)")
        self.lora_mode = lora
        self.name = {"auto": "fast", "wide": "wide", "sparse": "sparse"}[lora]

    def _sparse(self, experts_per_token: float, num_experts: int, *, sorted_rows: bool) -> bool:
        if self.lora_mode == "auto":
            return sparse_lora_pays(experts_per_token, num_experts, sorted_rows=sorted_rows)
        return self.lora_mode == "sparse"

    def lora_experts_computed(
        self, experts_per_token: float, num_experts: int, assignments_per_token: float | None = None, *, sorted_rows: bool,
    ) -> float:
        decided = experts_per_token if assignments_per_token is None else assignments_per_token
        return experts_per_token if self._sparse(decided, num_experts, sorted_rows=sorted_rows) else float(num_experts)

    def lora_rows(self, plan: RoutingPlan, num_real: int) -> SortedRows | None:
        if plan.dense or plan.top_idx is None or plan.top_idx.shape[1] != 1 or not self._sparse(1.0, num_real, sorted_rows=True):
            return None
        experts = plan.top_idx.reshape(-1)
        order = torch.argsort(experts, stable=True)
        counts = torch.bincount(experts, minlength=plan.num_experts)
        offsets = torch.cumsum(counts[:num_real], 0).to(torch.int32)
        real_rows = int(offsets[-1]) if plan.num_experts > num_real else None
        weights = plan.top_weight.reshape(-1)[order]
        return SortedRows(order, weights if real_rows is None else weights[:real_rows], offsets, plan.num_tokens, real_rows)

    def experts(self, bank: GroupedExperts, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        num_real = bank.num_experts
        if plan.dense:
            return bank.mixed(x, plan.combine[:, :num_real])
        tokens, weights, offsets, order = sorted_assignments(plan, num_real)
        out = _weighted(bank.grouped(_rows(x, tokens, order, plan, num_real), offsets), weights)
        return _combine(out, tokens, order, plan, num_real)

    def lora(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        num = a.shape[0]
        if plan.dense:
            return _wide_lora(x, a, b, plan.combine[:, :num])
        if plan.top_idx is not None:
            if self._sparse(float(plan.top_idx.shape[1]), num, sorted_rows=False):
                return _sparse_lora(x, a, b, plan, num)
            return _wide_lora(x, a, b, plan.combine[:, :num])
        split = VariableSplit.of(plan, num)
        if split.rest.numel() == 0 or not self._sparse(split.rest_experts_per_token, num, sorted_rows=False):
            return _wide_lora(x, a, b, plan.combine[:, :num])
        if split.num_full == 0:
            return _sparse_lora(x, a, b, plan, num)
        return split.lora(x, a, b, plan, num)


def _wide_lora(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, combine: torch.Tensor) -> torch.Tensor:
    """Every expert on every token: one product over all A, the weighting, one product over all B."""
    num, rank, width = a.shape
    h = F.linear(x, a.reshape(num * rank, width)).view(-1, num, rank)
    h = h * combine[:, :, None].to(h.dtype)
    return F.linear(h.reshape(-1, num * rank), b.permute(1, 0, 2).reshape(b.shape[1], num * rank))


def _sparse_lora(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, plan: RoutingPlan, num: int) -> torch.Tensor:
    """Only the selected experts: assignments sorted by expert, grouped products."""
    tokens, weights, offsets, order = sorted_assignments(plan, num)
    h = grouped_linear(_rows(x, tokens, order, plan, num), a, offsets)
    out = grouped_linear((h * weights.unsqueeze(-1)).to(h.dtype), b, offsets)
    return _combine(out, tokens, order, plan, num)


@dataclass
class VariableSplit:
    """A plan without a fixed k split into its tokens routed to every real expert (``full``) and the rest.

    ``rest_experts_per_token``: the mean real experts of the rest, what the cost rule decides on.
    ``lora``: the full tokens through the wide product (they compute every expert either way), the
    rest through the grouped one, each token's row put back in place.
    """

    full: torch.Tensor
    rest: torch.Tensor
    rest_experts_per_token: float

    @property
    def num_full(self) -> int:
        return self.full.numel()

    @classmethod
    def of(cls, plan: RoutingPlan, num_real: int) -> "VariableSplit":
        counts = plan.mask[:, :num_real].sum(-1)
        is_full = counts == num_real
        full, rest = is_full.nonzero().squeeze(1), (~is_full).nonzero().squeeze(1)
        rest_assignments = float(counts.sum()) - full.numel() * num_real
        return cls(full, rest, rest_assignments / max(rest.numel(), 1))

    def lora(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, plan: RoutingPlan, num: int) -> torch.Tensor:
        order = torch.cat([self.full, self.rest])
        rows = permute_rows(x, order)
        wide = _wide_lora(rows[: self.num_full], a, b, plan.combine[self.full, :num])
        sub = RoutingPlan(plan.combine[self.rest], plan.mask[self.rest])
        out = torch.cat([wide, _sparse_lora(rows[self.num_full :], a, b, sub, num)])
        return out.new_empty(out.shape).index_copy(0, order, out)


def _one_per_token(plan: RoutingPlan, num_real: int) -> bool:
    """A top-1 plan without null experts: its sorted assignments are a permutation of the tokens."""
    return plan.top_idx is not None and plan.top_idx.shape[1] == 1 and plan.num_experts == num_real


def _rows(x: torch.Tensor, tokens: torch.Tensor, order: torch.Tensor, plan: RoutingPlan, num_real: int) -> torch.Tensor:
    """The input row of every sorted assignment (a permutation for one expert per token)."""
    return permute_rows(x, order) if _one_per_token(plan, num_real) else x.index_select(0, tokens)


def _combine(out: torch.Tensor, tokens: torch.Tensor, order: torch.Tensor, plan: RoutingPlan, num_real: int) -> torch.Tensor:
    """Sum the sorted per-assignment rows ``out`` back into one row per token: the inverse
    permutation for one expert per token, else a scatter-add. Measured on CPU, the sparse LoRA
    path with top-k > 1 takes 0.64-0.92x of its time as a permutation of ``T * k`` rows with a
    per-token sum (docs/benchmarks.md)."""
    if _one_per_token(plan, num_real):
        return out.new_empty(out.shape).index_copy(0, order, out)
    return out.new_zeros(plan.num_tokens, out.shape[-1]).index_add(0, tokens, out)


def make_dispatch(kind: str) -> Dispatch:
    """``fast`` (grouped, LoRA by the cost rule), ``wide``, ``sparse`` or ``loop`` (reference)."""
    if kind == "loop":
        return LoopDispatch()
    return GroupedDispatch({"fast": "auto", "wide": "wide", "sparse": "sparse"}[kind])
