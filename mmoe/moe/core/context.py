"""The per-call facts an MoE block routes by, and where it puts what it records.

The LLM stays an unmodified Hugging Face model, so nothing can be passed to its MLP blocks as an
argument. Instead ``MMoEModel`` finds its ``MoEBlock``s by type when it is built and, in a forward
pre-hook on the LLM, sets one ``RoutingContext`` on each of them for *every* call of the LLM: the
training or scoring forward, the generation prefill and each decode step (batches expanded by beam
search or ``num_return_sequences`` included). A forward hook clears it again when the call ends.
The one exception is gradient checkpointing in training: backward recomputes the MLP blocks after
the forward has returned, so the context stays set in the ``recompute`` phase (route as before,
record nothing) until the next call replaces it.

Blocks write weighted aux losses and router statistics into the context's ``RoutingRecords``,
which belongs to that call: nothing accumulates on a module. A caller that needs each sample's
routing (RoMA's manifold term) names one position per sample in ``sample_positions``; every router
then records its (differentiable) expert distribution at the tokens at those positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from mmoe.moe.core.routers import RouterOutput, TokenInfo
from mmoe.moe.core.stats import RouterStats

Phase = Literal["forward", "prefill", "decode", "recompute"]
LossReduce = Literal["mean", "sum"]


@dataclass
class SampleRouting:
    """One router's expert distribution at each sample's announced position.

    ``sequences``: ``[n]`` the batch rows whose announced token this router saw; ``weights``: ``[n, E]``
    their float32 expert distributions (softmax scores; sigmoid scores normalised), with gradient.
    """

    sequences: torch.Tensor
    weights: torch.Tensor


@dataclass
class RoutingRecords:
    """Aux losses and router statistics written by the MoE blocks during one LLM call.

    Each aux loss is reduced over every (block, group) that reported it: ``mean`` (as HF Mixtral and
    Switch Transformers, which average over layers) or ``sum`` (MoE-LLaVA).
    """

    reduce: LossReduce = "mean"
    entropy_bins: int = 0
    sample_positions: torch.Tensor | None = None
    _samples: dict[object, dict[str, SampleRouting]] = field(default_factory=dict)
    _loss_sums: dict[str, torch.Tensor] = field(default_factory=dict)
    _loss_counts: dict[str, int] = field(default_factory=dict)
    stats: dict[object, RouterStats] = field(default_factory=dict)

    def add_loss(self, name: str, value: torch.Tensor) -> None:
        self._loss_sums[name] = self._loss_sums[name] + value if name in self._loss_sums else value
        self._loss_counts[name] = self._loss_counts.get(name, 0) + 1

    def aux_losses(self) -> dict[str, torch.Tensor]:
        if self.reduce == "sum":
            return dict(self._loss_sums)
        return {name: total / self._loss_counts[name] for name, total in self._loss_sums.items()}

    def stats_for(self, module: object) -> RouterStats:
        """The statistics accumulator of one routed module (keyed by the module itself)."""
        return self.stats.setdefault(module, RouterStats(self.entropy_bins))

    def add_sample_routing(self, module: object, group: str, tokens: TokenInfo, out: RouterOutput) -> None:
        """Keep ``out``'s expert distribution at each sample's announced position (``tokens``: each
        routed token's batch row and position). Nothing is kept unless the caller announced
        ``sample_positions`` (``[B]``, one position per row)."""
        if self.sample_positions is None:
            return
        sequence, position = tokens.sequence, tokens.position
        hit = (position == self.sample_positions.to(position.device)[sequence]).nonzero().squeeze(1)
        self._samples.setdefault(module, {})[group] = SampleRouting(sequence[hit], out.distribution()[hit])

    def sample_routing(self, names: dict[object, str]) -> dict[str, dict[str, SampleRouting]]:
        """Per-sample routing keyed by module name then group (``""`` without modality groups), in call order."""
        return {names[module]: groups for module, groups in self._samples.items()}

    def router_stats(self, names: dict[object, str]) -> dict[str, dict[str, torch.Tensor]]:
        """Statistics keyed by each module's name in the model (e.g. ``llm.model.layers.3.mlp``)."""
        return {names[module]: stats.pop() for module, stats in self.stats.items()}


@dataclass(frozen=True)
class RoutingContext:
    """Facts about the tokens of one LLM call, each ``[B, L]`` like that call's input.

    ``token_mask``: True for real tokens (False for padding). ``modality_ids``: 0 text, 1 image.
    ``language_ids``: index into ``mmoe.languages.LANGUAGES`` (None when unknown, e.g. decode steps).
    ``phase``: ``forward`` (a whole sequence: training, scoring), ``prefill`` and ``decode``
    (cached generation), ``recompute`` (gradient-checkpoint replay: route the same, record nothing).
    ``records``: where the blocks write losses and statistics (None: record nothing).
    """

    token_mask: torch.Tensor
    modality_ids: torch.Tensor
    language_ids: torch.Tensor | None
    phase: Phase
    records: RoutingRecords | None

    @property
    def records_anything(self) -> bool:
        return self.records is not None and self.phase != "recompute"

    def for_recompute(self) -> "RoutingContext":
        return RoutingContext(self.token_mask, self.modality_ids, self.language_ids, "recompute", None)
