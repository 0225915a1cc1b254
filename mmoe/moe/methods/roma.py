"""RoMA's routing-manifold regulariser (Li, Li, Zhou, "Routing Manifold Alignment Improves
Generalization of Mixture-of-Experts LLMs", ICLR 2026; no public code).

Each sample ``i`` is pulled toward the routing of its ``k`` nearest *successful* neighbours ``j``
(samples the model already answers) in a task-embedding space:

    sim(i, j) = exp(-||E(x_i) - E(x_j)||^2 / 2 sigma^2)             (Eq. 5)
    W_ij      = sim(i, j) / sum_{j' in N(i)} sim(i, j')              (Eq. 6)
    L_manifold(i) = sum_{j in N(i)} W_ij ||r_i - r_j||^2              (Eq. 7)

``r_i`` concatenates the routers' expert distributions at the sample's last prompt token over the
last MoE layers. Here: the neighbour graph and success flags, the routing vectors, the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmoe.model.splice import IGNORE_INDEX
from mmoe.moe.core.context import SampleRouting


def last_prompt_positions(attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[B]``: each sample's last prompt token, the one just before its first supervised label (its
    routing decides the answer's first token); the last real token when nothing is supervised."""
    length = labels.shape[1]
    columns = torch.arange(length, device=labels.device).expand_as(labels)
    first_label = torch.where(labels != IGNORE_INDEX, columns, length).min(1).values
    last_real = torch.where(attention_mask.bool(), columns, -1).max(1).values
    return torch.where(first_label < length, first_label - 1, last_real).clamp_min(0)


def routing_vectors(sample_routing: dict[str, dict[str, SampleRouting]], batch: int, layers: int) -> torch.Tensor:
    """``[B, R]``: per sample, its expert distributions in the last ``layers`` MoE blocks, concatenated.

    Inside modality groups a block contributes one slot per group (in the groups' order); the group
    the sample's token did not reach stays zero. Each sample must be routed exactly once per block.
    """
    if not sample_routing:
        raise ValueError("no MoE block recorded per-sample routing: the model has no routed MoE block")
    parts = []
    for name, groups in list(sample_routing.items())[-layers:]:
        seen = torch.zeros(batch, dtype=torch.long)
        for routed in groups.values():
            rows = routed.weights.new_zeros(batch, routed.weights.shape[1])
            parts.append(rows.index_copy(0, routed.sequences, routed.weights))
            seen += torch.bincount(routed.sequences.cpu(), minlength=batch)
        if not bool((seen == 1).all()):
            bad = (seen != 1).nonzero().squeeze(1).tolist()
            raise ValueError(f"MoE block {name}: samples {bad} were not routed exactly once at their announced position")
    return torch.cat(parts, dim=1)


@dataclass
class NeighbourGraph:
    """Per sample ``i``: ``index[i]`` its up-to-k successful neighbours (-1 pads a short row) and
    ``weight[i]`` their normalised similarities ``W_ij`` (0 on padding; a row sums to 1 or is all 0)."""

    index: torch.Tensor
    weight: torch.Tensor


def knn_graph(embeddings: torch.Tensor, successful: torch.Tensor, *, k: int, sigma: float | None = None) -> NeighbourGraph:
    """RoMA's k-NN neighbourhoods (Eq. 3) among the successful samples, a sample never its own
    neighbour, with Gaussian weights (Eqs. 5-6). ``sigma`` None: the median neighbour distance."""
    n = embeddings.shape[0]
    dist2 = torch.cdist(embeddings.double(), embeddings.double()).square()
    eligible = successful.bool().unsqueeze(0).expand(n, n) & ~torch.eye(n, dtype=torch.bool, device=embeddings.device)
    dist2 = dist2.masked_fill(~eligible, float("inf"))
    near, index = torch.topk(dist2, min(k, n), dim=1, largest=False)
    valid = torch.isfinite(near)
    if sigma is None:
        found = near[valid].sqrt()
        sigma = float(found.median()) if found.numel() and float(found.median()) > 0 else 1.0
    # exp(-d^2 / 2 sigma^2) normalised over the row, computed as a softmax so far neighbours never underflow to 0/0
    logits = (-near / (2 * sigma**2)).masked_fill(~valid, float("-inf"))
    weight = torch.where(valid.any(1, keepdim=True), logits.softmax(1), torch.zeros_like(logits)).nan_to_num(0.0)
    return NeighbourGraph(index.masked_fill(~valid, -1), weight.float())


def manifold_loss(routing: torch.Tensor, neighbours: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over the samples that have neighbours of ``sum_j W_ij ||r_i - r_j||^2`` (Eq. 7).

    ``routing``: ``[B, R]`` (with gradient), ``neighbours``: ``[B, k, R]`` the neighbours' routing,
    ``weight``: ``[B, k]``. A batch where no sample has a neighbour gives a zero on the graph.
    """
    per_sample = (weight.to(routing.dtype) * (routing.unsqueeze(1) - neighbours).square().sum(-1)).sum(1)
    has = weight.sum(1) > 0
    if not bool(has.any()):
        return routing.sum() * 0.0
    return per_sample[has].mean()
