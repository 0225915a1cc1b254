"""Router statistics, accumulated over the forwards between two reads (e.g. every generation step).

Per router: ``tokens_per_expert`` (routing assignments each expert received, null experts
included), ``expert_weight`` (mean combine weight per expert), ``router_entropy`` (mean entropy of the per-token expert distribution, nats),
``dropped_tokens`` (tokens that reached no real expert: capacity overflow or null-only picks) and
``num_tokens``; with language ids known, ``tokens_per_expert/<lang>`` per language. Keys get a
``<group>/`` prefix inside modality groups (``text/``, ``image/``).
Only real tokens are counted: padding never reaches a router.
"""

from __future__ import annotations

import torch

from mmoe.languages import LANGUAGES
from mmoe.moe.core.routers import RouterOutput

_MEANS = {"entropy_sum": "router_entropy", "weight_sum": "expert_weight"}


class RouterStats:
    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}

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
        self._add(prefix + "num_tokens", torch.tensor(float(mask.shape[0]), device=mask.device))
        if language is not None:
            for lang in language.unique().tolist():
                self._add(f"{prefix}tokens_per_expert/{LANGUAGES[lang]}", mask[language == lang].sum(0).float())
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
