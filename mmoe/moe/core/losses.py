"""Router losses. A loss reads one ``RouterOutput`` (the real tokens one router saw) and returns an
unweighted scalar; the MoE block multiplies by ``coef`` and reports it under ``name``.

New objectives (Tsallis entropy, null-bucket balance, ...) implement the same ``RouterLoss``
protocol and are appended to a block's loss list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from mmoe.moe.config import EntropyLossConfig, LossesConfig
from mmoe.moe.core.entropy import entropy
from mmoe.moe.core.routers import RouterOutput


class RouterLoss(Protocol):
    name: str
    coef: float

    def __call__(self, out: RouterOutput) -> torch.Tensor: ...


def empty_loss(out: RouterOutput) -> torch.Tensor:
    """A zero that stays attached to the router's graph (no tokens reached it)."""
    return out.logits.sum() * 0.0


@dataclass
class BalanceLoss:
    """Switch/GShard load balance ``E * sum_i f_i P_i`` (1.0 when perfectly balanced).

    ``P_i``: mean routing probability of expert i. ``f_i``: share of routing assignments that went
    to expert i (``switch``), or share of tokens whose top-1 expert is i (``gshard``, as DeepSpeed),
    or the mean combine weight of expert i (``masked``, DynMoLE: the probabilities its hybrid routing
    kept, unrenormalised; this ``f`` is differentiable, so the loss reaches the router through it too).
    HF Mixtral's value equals ``k`` times the ``switch`` value for top-k routing.
    """

    coef: float
    kind: str = "switch"
    name: str = "moe_balance"

    def __call__(self, out: RouterOutput) -> torch.Tensor:
        if out.logits.shape[0] == 0:
            return empty_loss(out)
        probs = out.distribution()
        num = probs.shape[1]
        if self.kind == "gshard":
            share = F.one_hot(probs.argmax(-1), num).float().mean(0)
        elif self.kind == "masked":
            share = out.plan.combine.mean(0)
        else:
            counts = out.plan.mask.float().sum(0)
            share = counts / counts.sum().clamp_min(1.0)
        return num * (share * probs.mean(0)).sum()


@dataclass
class ZLoss:
    """ST-MoE router z-loss: ``mean_t (logsumexp_j logits_tj)^2`` keeps router logits small."""

    coef: float
    name: str = "moe_z_loss"

    def __call__(self, out: RouterOutput) -> torch.Tensor:
        if out.logits.shape[0] == 0:
            return empty_loss(out)
        return torch.logsumexp(out.logits, dim=-1).square().mean()


@dataclass
class EntropyLoss:
    """Mean normalised router entropy over the tokens (DynMoLE's Tsallis loss): lower is more peaked."""

    coef: float
    cfg: EntropyLossConfig
    name: str = "moe_entropy"

    def __call__(self, out: RouterOutput) -> torch.Tensor:
        if out.logits.shape[0] == 0:
            return _empty(out)
        return entropy(out.distribution(), self.cfg.type, index=self.cfg.index, eps=self.cfg.eps).mean()


def build_losses(cfg: LossesConfig) -> list[RouterLoss]:
    """The losses a ``LossesConfig`` turns on (coefficient > 0)."""
    losses: list[RouterLoss] = []
    if cfg.balance > 0:
        losses.append(BalanceLoss(cfg.balance, cfg.balance_type))
    if cfg.z_loss > 0:
        losses.append(ZLoss(cfg.z_loss))
    if cfg.entropy is not None and cfg.entropy.coef > 0:
        losses.append(EntropyLoss(cfg.entropy.coef, cfg.entropy))
    return losses
