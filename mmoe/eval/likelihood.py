"""Likelihood scoring: each option is scored by the model's log-probability of answering with it, so no
answer extraction is needed. The prompt is the generation prompt; the assistant reply is the letter
(``target="letter"``: summed log-probability) or "letter. option text" (``target="text"``: mean per
token, so long options are not penalised). The chosen option is the most likely one."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from mmoe.eval.batching import by_length, progress_bar, to_model
from mmoe.eval.benchmark import MCQRow
from mmoe.eval.cache import RowCache
from mmoe.eval.prompts import user_message
from mmoe.model.splice import IGNORE_INDEX
from mmoe.tokenization.templates import Turn

TARGETS = ("letter", "text")


def reply(row: MCQRow, letter: str, target: str) -> str:
    if target not in TARGETS:
        raise ValueError(f"likelihood target must be one of {', '.join(TARGETS)}, not {target!r}")
    return letter if target == "letter" else f"{letter}. {row.options[letter]}"


def _chunks(rows: list[MCQRow], sequences: int) -> Iterator[list[MCQRow]]:
    """Row groups holding about ``sequences`` option sequences each (one sequence per option)."""
    chunk: list[MCQRow] = []
    count = 0
    for row in by_length(rows):
        chunk.append(row)
        count += len(row.options)
        if count >= sequences:
            yield chunk
            chunk, count = [], 0
    if chunk:
        yield chunk


def _batch(processor, rows: list[MCQRow], style: str, target: str) -> tuple[dict[str, torch.Tensor], list[tuple[int, str]]]:
    encoded, images, keys = [], [], []
    for row in rows:
        message = user_message(row, style, processor.image_token)
        row_images = row.load_images()
        for letter in row.options:
            encoded.append(processor.encode([Turn("user", message), Turn("assistant", reply(row, letter, target))]))
            images.extend(row_images)
            keys.append((row.index, letter))
    return processor.pad(encoded, images), keys


def sequence_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, labels: torch.Tensor, mean: bool) -> torch.Tensor:
    """Summed (or mean) log-probability of the supervised tokens of each sequence."""
    mask = labels[:, 1:] != IGNORE_INDEX
    positions = mask.nonzero()
    picked = logits[:, :-1][positions[:, 0], positions[:, 1]].float().log_softmax(-1)
    token_lp = picked.gather(1, input_ids[:, 1:][positions[:, 0], positions[:, 1]].unsqueeze(1)).squeeze(1)
    total = torch.zeros(logits.shape[0], device=logits.device).index_add_(0, positions[:, 0], token_lp)
    return total / mask.sum(1).clamp(min=1) if mean else total


@torch.no_grad()
def likelihood_scores(
    model,
    processor,
    rows: list[MCQRow],
    cache: RowCache,
    style: str = "vlmevalkit",
    batch_size: int = 8,
    target: str = "letter",
    progress: bool = True,
) -> dict[int, dict[str, float]]:
    """``index -> {letter: log-probability}`` for every row (cached per row)."""
    todo = [row for row in rows if row.index not in cache]
    with progress_bar(len(rows), len(rows) - len(todo), "likelihood", progress) as bar:
        for chunk in _chunks(todo, batch_size):
            batch, keys = _batch(processor, chunk, style, target)
            batch = to_model(batch, model)
            logits = model(**batch).logits
            scores = sequence_logprobs(logits, batch["input_ids"], batch["labels"], mean=target == "text").tolist()
            per_row: dict[int, dict[str, float]] = {}
            for (index, letter), value in zip(keys, scores):
                per_row.setdefault(index, {})[letter] = value
            cache.add(per_row)
            bar.update(len(chunk))
    return {row.index: cache.values[row.index] for row in rows}


def choose(scores: dict[str, float]) -> str:
    """The most likely letter (the earliest letter on an exact tie)."""
    return max(scores, key=lambda letter: (scores[letter], -ord(letter)))
