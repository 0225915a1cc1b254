"""Held-out scores on prepared data, per record: answer loss and teacher-forced exact match.

A record's answer is exactly right when the model's most likely next token is the reference token at
every supervised position (the end-of-turn token included): then greedy decoding reproduces the
reference answer, so this is generation accuracy without a generation loop.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

from mmoe.data.collate import model_inputs
from mmoe.model.splice import IGNORE_INDEX

GROUPS = ("language", "source")


@torch.no_grad()
def score_batch(model, batch: dict[str, torch.Tensor]) -> tuple[list[bool], list[float], list[int]]:
    """Per sample: (exact match, summed answer NLL, supervised tokens)."""
    inputs = {k: v.to(model.device) for k, v in model_inputs(batch).items()}
    labels = inputs.pop("labels")
    logits = model(**inputs).logits[:, :-1].float()
    target = labels[:, 1:]
    supervised = target != IGNORE_INDEX
    nll = F.cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none") * supervised
    wrong = (logits.argmax(-1) != target) & supervised
    tokens = supervised.sum(1)
    return ((wrong.sum(1) == 0) & (tokens > 0)).tolist(), nll.sum(1).tolist(), tokens.tolist()


def score_prepared(model, path: str | Path, *, batch_size: int = 16) -> dict[str, dict[str, dict[str, float]]]:
    """``{"overall": {"all": {...}}, "language": {lang: {...}}, "source": {family: {...}}}``, each with
    ``exact`` (share of records answered exactly), ``loss`` (mean answer NLL per token) and ``n``."""
    from mmoe.data.collate import Collator
    from mmoe.data.dataset import ConversationDataset
    from mmoe.model.processor import MMoEProcessor

    model.eval()
    dataset = ConversationDataset.from_paths([str(path)], MMoEProcessor.from_model(model), model.config.model.tokenizer.max_length)
    keys = {g: [v for part in dataset.parts for v in part.records[g]] for g in GROUPS}
    collate = Collator(model.tokenizer.pad_token_id)
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])  # exact, nll, tokens, n
    for start in range(0, len(dataset), batch_size):
        indices = list(range(start, min(start + batch_size, len(dataset))))
        for i, exact, nll, tokens in zip(indices, *score_batch(model, collate([dataset[i] for i in indices]))):
            for group in (("overall", "all"), *((g, keys[g][i]) for g in GROUPS)):
                row = totals[group]
                row[0] += exact
                row[1] += nll
                row[2] += tokens
                row[3] += 1
    out: dict[str, dict[str, dict[str, float]]] = {g: {} for g in ("overall", *GROUPS)}
    for (group, key), (exact, nll, tokens, n) in sorted(totals.items()):
        out[group][key] = {"exact": exact / n, "loss": nll / tokens if tokens else float("nan"), "n": n}
    return out
