"""Entropies of per-token router distributions (``p: [T, E]``), normalised to [0, 1] by their maximum.

DynMoLE routes by and regularises the Tsallis (or Renyi) entropy; GW-MoE broadcasts by the Shannon
entropy. As in DynMoLE's reference code, ``eps`` is added to every probability before the power or
the log, and the maximum is the entropy of the uniform distribution over ``E`` experts.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

EntropyType = Literal["tsallis", "renyi", "shannon"]


def max_entropy(kind: EntropyType, index: float, num_experts: int) -> float:
    """The entropy of the uniform distribution over ``num_experts`` (the normaliser)."""
    if kind == "tsallis" and index != 1.0:
        return (1.0 - num_experts ** (1.0 - index)) / (index - 1.0)
    return math.log(num_experts)


def entropy(p: torch.Tensor, kind: EntropyType, *, index: float = 1.0, eps: float = 0.0, normalize: bool = True) -> torch.Tensor:
    """Per-token entropy of ``p`` (float32): Tsallis ``(1 - sum p^q) / (q - 1)``, Renyi
    ``log(sum p^a) / (1 - a)``, Shannon ``-sum p log p`` (the limit q, a -> 1 of both)."""
    p = p.float() + eps
    if kind == "shannon" or index == 1.0:
        value = -(p * p.log()).sum(-1)
    elif kind == "tsallis":
        value = (1.0 - p.pow(index).sum(-1)) / (index - 1.0)
    else:
        value = p.pow(index).sum(-1).add(1e-10).log() / (1.0 - index)
    if not normalize:
        return value
    return value / max_entropy(kind, index, p.shape[-1])
