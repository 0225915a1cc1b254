"""DynMoLE (Li et al. 2025): hybrid routing switched by the Tsallis entropy of the router distribution.

Per token, with ``p = softmax(W x)`` and ``H`` its normalised Tsallis (or Renyi) entropy:

- ``H > entropy_threshold`` (the router is unsure): every expert, weighted by ``p`` (soft routing);
- otherwise top-p: experts in descending ``p`` while the cumulative sum is ``<= top_p`` (the expert
  that crosses ``top_p`` is left out), and always at least the ``keep_top_k`` best.

The combine weights are ``p`` on the kept experts, not renormalised (as the reference code). A
threshold ``>= 1`` never broadcasts. The entropy loss (``moe.losses.entropy``) and the balance on
masked weights (``moe.losses.balance_type: masked``) are core losses that read this router's output.
Router statistics get ``dynmole_entropy``, ``dynmole_broadcast`` (share of soft-routed tokens) and
``experts_per_token``.
"""

from __future__ import annotations

import torch

from mmoe.moe.core.entropy import EntropyType, entropy
from mmoe.moe.core.routers import Router, RouterOutput, RoutingPlan, TokenInfo


def top_p_mask(probs: torch.Tensor, *, top_p: float, keep_top_k: int) -> torch.Tensor:
    """``[T, E]`` bool: experts by descending probability while the cumulative sum is ``<= top_p``,
    at least the ``keep_top_k`` best."""
    ordered, order = torch.sort(probs, dim=-1, descending=True)
    keep = ordered.cumsum(-1) <= top_p
    keep[:, :keep_top_k] = True
    return torch.zeros_like(keep).scatter(1, order, keep)


class DynMoLERouter(Router):
    """Softmax gate + DynMoLE's entropy-switched soft / top-p routing (unrenormalised weights)."""

    def __init__(
        self,
        dim: int,
        num_experts: int,
        *,
        top_p: float,
        keep_top_k: int,
        entropy_threshold: float,
        entropy_type: EntropyType = "tsallis",
        entropy_index: float = 1.1,
        entropy_eps: float = 1e-5,
        **router,
    ) -> None:
        super().__init__(dim, num_experts, score="softmax", **router)
        if num_experts < 2:
            raise ValueError("DynMoLE routing needs at least 2 experts (the normalised entropy of one is undefined)")
        if not 1 <= keep_top_k <= num_experts:
            raise ValueError(f"keep_top_k={keep_top_k} must be in 1..{num_experts} (the experts)")
        self.top_p, self.keep_top_k = top_p, keep_top_k
        self.entropy_threshold = entropy_threshold
        self.entropy_type, self.entropy_index, self.entropy_eps = entropy_type, entropy_index, entropy_eps

    def expected_experts(self) -> float:
        """Experts per token at uniform routing (as at initialisation), by this router's own rule:
        E when the threshold broadcasts a uniform distribution, else the top-p count (at least
        ``keep_top_k``). Trained routing is data-dependent (``experts_range``); the measured mean is
        the ``experts_per_token`` statistic."""
        mask, _, _ = self.select(torch.full((1, self.num_experts), 1.0 / self.num_experts))
        return float(mask.sum())

    def experts_range(self) -> tuple[float, float]:
        """``keep_top_k`` up to E (soft routing), or up to E - 1 when nothing broadcasts and top-p
        < 1: the expert that crosses ``top_p`` is always left out."""
        can_reach_all = self.entropy_threshold < 1.0 or self.top_p >= 1.0 or self.keep_top_k == self.num_experts
        return float(self.keep_top_k), float(self.num_experts if can_reach_all else max(self.keep_top_k, self.num_experts - 1))

    def one_expert_per_token(self) -> bool:
        """No: soft or top-p routing gives each token its own number of experts."""
        return False

    def select(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mask ``[T, E]``, normalised entropy ``[T]``, broadcast ``[T]``): every expert for tokens
        whose entropy exceeds the threshold (none for a threshold >= 1), else top-p."""
        value = self.token_entropy(probs)
        broadcast = value > self.entropy_threshold if self.entropy_threshold < 1.0 else torch.zeros_like(value, dtype=torch.bool)
        mask = top_p_mask(probs, top_p=self.top_p, keep_top_k=self.keep_top_k) | broadcast.unsqueeze(1)
        return mask, value, broadcast

    def token_entropy(self, probs: torch.Tensor) -> torch.Tensor:
        return entropy(probs, self.entropy_type, index=self.entropy_index, eps=self.entropy_eps)

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None) -> RouterOutput:
        logits = self.logits(x)
        probs = self.scores(logits)
        mask, value, broadcast = self.select(probs)
        extras = {
            "dynmole_entropy_sum": value,
            "dynmole_broadcast_sum": broadcast.float(),
            "experts_per_token_sum": mask.sum(-1).float(),
        }
        return RouterOutput(logits, probs, RoutingPlan.from_mask(mask, probs), extras=extras, tokens=tokens)
