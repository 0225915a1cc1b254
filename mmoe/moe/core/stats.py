"""Router statistics, accumulated over the forwards between two reads (e.g. every generation step).

Per router: ``tokens_per_expert`` (routing assignments each expert received, null experts
included), ``expert_weight`` (mean combine weight per expert), ``router_entropy`` (mean entropy of the per-token expert distribution, nats),
``dropped_tokens`` (tokens that reached no real expert: capacity overflow or null-only picks),
``true_experts_per_token`` (mean real experts a token reached; only where null experts are routable) and
``num_tokens``; with language ids known, ``tokens_per_expert/<lang>`` and ``routing_weight/<lang>``
(summed combine weights: what soft routing such as Parrot's gives each expert) per language; and the
per-token means of routing methods' extras (DynMoLE ``dynmole_entropy``, ``dynmole_broadcast``,
``experts_per_token``; GW-MoE ``gw_broadcast``, ``gw_entropy``; MoR ``mor_main_entropy``). Keys get a
``<group>/`` prefix inside modality groups (``text/``, ``image/``).
Only real tokens are counted: padding never reaches a router.
"""

from __future__ import annotations

import math

import torch

from mmoe.languages import LANGUAGES
from mmoe.moe.core.routers import RouterOutput

_MEANS = {  # method extras first: a key takes the first suffix it ends with
    "dynmole_entropy_sum": "dynmole_entropy",
    "dynmole_broadcast_sum": "dynmole_broadcast",
    "experts_per_token_sum": "experts_per_token",
    "gw_entropy_sum": "gw_entropy",
    "gw_broadcast_sum": "gw_broadcast",
    "mor_main_entropy_sum": "mor_main_entropy",
    "entropy_sum": "router_entropy",
    "weight_sum": "expert_weight",
    "true_experts_sum": "true_experts_per_token",
    "expert_flops_saved_sum": "expert_flops_saved",
    "expert_flops_saved_share_sum": "expert_flops_saved_share",
}


class RouterStats:
    """``entropy_bins`` > 0 also counts tokens per bin of normalised entropy ``H / log E`` in [0, 1]
    (``entropy_hist``), for entropy distributions in ``mmoe analyze``."""

    def __init__(self, entropy_bins: int = 0) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self.entropy_bins = entropy_bins

    def _add(self, key: str, value: torch.Tensor) -> None:
        self._sums[key] = self._sums[key] + value if key in self._sums else value

    @torch.no_grad()
    def add(self, out: RouterOutput, num_real: int, prefix: str = "", language: torch.Tensor | None = None) -> None:
        probs = out.distribution().detach()
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
        mask = out.plan.mask
        self._add(prefix + "tokens_per_expert", mask.sum(0).float())
        self._add(prefix + "entropy_sum", entropy.sum())
        self._add(prefix + "weight_sum", out.plan.combine.detach().sum(0).float())
        self._add(prefix + "dropped_tokens", (~mask[:, :num_real].any(-1)).sum().float())
        if mask.shape[1] > num_real:
            self._add(prefix + "true_experts_sum", mask[:, :num_real].sum().float())
        self._add(prefix + "num_tokens", torch.tensor(float(mask.shape[0]), device=mask.device))
        if self.entropy_bins:
            normalised = entropy.float() / math.log(probs.shape[-1]) if probs.shape[-1] > 1 else torch.zeros_like(entropy)
            self._add(prefix + "entropy_hist", torch.histc(normalised.clamp(0, 1), bins=self.entropy_bins, min=0.0, max=1.0))
        if language is not None:
            combine = out.plan.combine.detach().float()
            for lang in language.unique().tolist():
                rows = language == lang
                self._add(f"{prefix}tokens_per_expert/{LANGUAGES[lang]}", mask[rows].sum(0).float())
                self._add(f"{prefix}routing_weight/{LANGUAGES[lang]}", combine[rows].sum(0))
        for name, value in out.extras.items():
            self._add(prefix + name, value.detach().float().sum())

    def pop(self) -> dict[str, torch.Tensor]:
        """Totals, with sums that are per-token averages divided by the token count."""
        sums, self._sums = self._sums, {}
        out = {}
        for key, value in sums.items():
            suffix = next((s for s in _MEANS if key.endswith(s)), None)
            if suffix is None:
                out[key] = value
                continue
            prefix = key[: -len(suffix)]
            out[prefix + _MEANS[suffix]] = value / sums[prefix + "num_tokens"].clamp_min(1.0)
        return out


def merge_stats(total: dict[str, torch.Tensor], more: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Two popped statistics of one router combined as if accumulated together: sums add, per-token
    means are weighted by their token counts."""
    merged = dict(total)
    for key, value in more.items():
        if key not in merged:
            merged[key] = value
            continue
        mean = max((m for m in _MEANS.values() if key.endswith(m)), key=len, default=None)  # true_experts_per_token, not experts_per_token
        if mean is None:
            merged[key] = merged[key] + value
            continue
        count = key[: -len(mean)] + "num_tokens"
        a, b = total[count], more[count]
        merged[key] = (merged[key] * a + value * b) / (a + b).clamp_min(1.0)
    return merged
