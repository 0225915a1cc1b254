"""Validation loss on ``data.eval``: every sample once, token-weighted, the same number of forwards on every rank."""

from __future__ import annotations

import math
from typing import Iterable

import torch

from mmoe.data.collate import model_inputs
from mmoe.model.splice import IGNORE_INDEX


def eval_plan(size: int, batch_size: int, rank: int, world_size: int) -> list[tuple[list[int], bool]]:
    """This rank's ``(indices, counted)`` batches: samples ``rank::world_size`` in order.

    Ranks with fewer batches are topped up with uncounted one-sample batches, because under ZeRO-3
    every rank must run every forward (the parameters are gathered collectively).
    """
    if size == 0:
        raise ValueError("data.eval holds no sample")
    mine = list(range(size))[rank::world_size]
    batches = [(mine[i : i + batch_size], True) for i in range(0, len(mine), batch_size)]
    longest = math.ceil(math.ceil(size / world_size) / batch_size)
    return batches + [([0], False)] * (longest - len(batches))


def supervised_tokens(labels: torch.Tensor) -> int:
    """Positions whose next token is a target: what a causal LM's mean loss is averaged over."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def validation_loss(engine, batches: Iterable[tuple[dict, bool]]) -> float:
    """Mean LM loss per supervised token over all ranks' counted batches (aux losses left out)."""
    totals = torch.zeros(2, dtype=torch.float64, device=engine.device)
    was_training = engine.training
    engine.eval()
    with torch.no_grad():
        for batch, counted in batches:
            inputs = {k: v.to(engine.device) for k, v in model_inputs(batch).items()}
            out = engine(**inputs)
            if counted:
                tokens = supervised_tokens(inputs["labels"])
                totals += torch.tensor([float(out.lm_loss) * tokens, tokens], dtype=torch.float64, device=engine.device)
    if torch.distributed.is_initialized():
        torch.distributed.all_reduce(totals)
    engine.train(was_training)
    return float(totals[0] / totals[1]) if totals[1] > 0 else math.nan
