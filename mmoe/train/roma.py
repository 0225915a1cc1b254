"""RoMA in training: an index pass over the training set, then the manifold term in every step.

The index pass (before the first step, with the model as the stage starts) gives each sample its
task embedding, whether it is *successful* and its routing vector. The neighbour graph is fixed from
then on; each neighbour's routing comes from a bank that starts from the index pass and is refreshed
(detached) whenever that sample is trained on, so neighbours follow the routers without an extra
forward per step. Every rank indexes the whole set (same weights, same result).
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F

from mmoe.config.errors import ConfigError
from mmoe.data.collate import model_inputs
from mmoe.model.splice import IGNORE_INDEX
from mmoe.moe.methods.roma import NeighbourGraph, knn_graph, last_prompt_positions, manifold_loss, routing_vectors
from mmoe.train.method_configs import RoMAConfig


def answer_scores(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: mean teacher-forced loss of its answer tokens (inf when it has none), and whether
    every answer token is the model's greedy prediction (``f(x) = y``, RoMA's Eq. 2)."""
    logits, targets = logits[:, :-1].float(), labels[:, 1:]
    supervised = targets != IGNORE_INDEX
    token_loss = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none")
    count = supervised.sum(1)
    loss = torch.where(count > 0, (token_loss * supervised).sum(1) / count.clamp_min(1), torch.inf)
    correct = (logits.argmax(-1) == targets) | ~supervised
    return loss, correct.all(1) & (count > 0)


def prompt_mask(batch: dict, image_token_id: int) -> torch.Tensor:
    """``[B, L]``: the prompt's text tokens (real, unsupervised, not image placeholders)."""
    return batch["attention_mask"].bool() & (batch["labels"] == IGNORE_INDEX) & (batch["input_ids"] != image_token_id)


def pooled_prompt_states(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B, D]``: the LLM's last hidden states averaged over each prompt's text tokens."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def sentence_transformer(name: str):
    """A sentence-transformers model by hub id or local path (imported only when asked for)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError(
            "train.roma.embedding=sentence_transformers needs the sentence-transformers package "
            "(pip install sentence-transformers), or use train.roma.embedding=prompt_states"
        ) from exc
    try:
        return SentenceTransformer(name)
    except OSError as exc:
        raise ConfigError(f"train.roma.embedding_model={name!r}: cannot load this sentence-transformers model ({exc})") from exc


class RoMAObjective:
    """Adds ``coef * L_manifold`` for each training batch (by the batch's dataset ids)."""

    def __init__(self, *, cfg: RoMAConfig, graph: NeighbourGraph, bank: torch.Tensor, successful: torch.Tensor) -> None:
        self.cfg, self.graph, self.bank, self.successful = cfg, graph, bank, successful

    def inputs(self, batch: dict) -> dict:
        """Extra forward arguments: the position whose routing stands for each sample."""
        return {"routing_positions": last_prompt_positions(batch["attention_mask"], batch["labels"])}

    def losses(self, out, ids: list[int]) -> dict[str, torch.Tensor]:
        routing = routing_vectors(out.sample_routing, len(ids), self.cfg.layers)
        rows = torch.as_tensor(ids, dtype=torch.long)
        index, weight = self.graph.index[rows], self.graph.weight[rows]
        neighbours = self.bank[index.clamp_min(0)].to(routing.device)
        value = manifold_loss(routing, neighbours, weight.to(routing.device))
        self.bank[rows] = routing.detach().float().cpu()
        return {"roma_manifold": self.cfg.coef * value}

    def bank_manifold(self) -> float:
        """The manifold term over the whole training set, each sample with its latest routing (unweighted)."""
        neighbours = self.bank[self.graph.index.clamp_min(0)]
        return float(manifold_loss(self.bank, neighbours, self.graph.weight))

    def metrics(self) -> dict:
        return {"roma": {
            "successful": int(self.successful.sum()), "samples": int(self.successful.numel()), "set_manifold": self.bank_manifold(),
        }}


@torch.no_grad()
def build_roma(cfg: RoMAConfig, model, batches: Iterable[dict]) -> RoMAObjective:
    """The index pass over ``batches`` (every training sample once, on the model's device, with ``ids``)."""
    encoder = sentence_transformer(cfg.embedding_model) if cfg.embedding == "sentence_transformers" else None
    was_training = model.training
    model.eval()
    ids, embeddings, routing, losses, exact = [], [], [], [], []
    try:
        for batch in batches:
            inputs = model_inputs(batch)
            positions = last_prompt_positions(inputs["attention_mask"], inputs["labels"])
            out = model(**inputs, routing_positions=positions, output_hidden_states=encoder is None)
            mask = prompt_mask(inputs, model.image_token_id)
            if encoder is None:
                embeddings.append(pooled_prompt_states(out.hidden_states[-1].float(), mask).cpu())
            else:
                texts = [model.tokenizer.decode(row[keep].tolist(), skip_special_tokens=True) for row, keep in zip(inputs["input_ids"], mask)]
                embeddings.append(torch.as_tensor(encoder.encode(texts)).float().cpu())
            routing.append(routing_vectors(out.sample_routing, len(batch["ids"]), cfg.layers).float().cpu())
            loss, correct = answer_scores(out.logits, inputs["labels"])
            losses.append(loss.cpu())
            exact.append(correct.cpu())
            ids.extend(batch["ids"])
    finally:
        model.train(was_training)
    size = max(ids) + 1
    order = torch.as_tensor(ids, dtype=torch.long)
    embed = torch.zeros(size, embeddings[0].shape[1]).index_copy(0, order, torch.cat(embeddings))
    bank = torch.zeros(size, routing[0].shape[1]).index_copy(0, order, torch.cat(routing))
    loss = torch.full((size,), torch.inf).index_copy(0, order, torch.cat(losses))
    if cfg.success == "exact_match":
        successful = torch.zeros(size, dtype=torch.bool).index_copy(0, order, torch.cat(exact))
    else:
        finite = loss[torch.isfinite(loss)]
        successful = loss <= torch.quantile(finite, cfg.success_quantile) if finite.numel() else torch.isfinite(loss)
    graph = knn_graph(embed, successful, k=cfg.k, sigma=cfg.sigma)
    return RoMAObjective(cfg=cfg, graph=graph, bank=bank, successful=successful)
