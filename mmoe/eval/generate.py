"""Batched greedy generation over benchmark rows, cached per row."""

from __future__ import annotations

import torch

from mmoe.eval.batching import batches, progress_bar, to_model
from mmoe.eval.benchmark import MCQRow
from mmoe.eval.cache import RowCache
from mmoe.eval.prompts import user_message
from mmoe.tokenization.templates import Turn


@torch.no_grad()
def generate_predictions(
    model,
    processor,
    rows: list[MCQRow],
    cache: RowCache,
    style: str = "vlmevalkit",
    batch_size: int = 8,
    max_new_tokens: int = 64,
    progress: bool = True,
    desc: str = "generate",
) -> dict[int, str]:
    """``index -> answer text`` for every row; rows already in ``cache`` are not run again."""
    todo = [row for row in rows if row.index not in cache]
    with progress_bar(len(rows), len(rows) - len(todo), desc, progress) as bar:
        for batch_rows in batches(todo, batch_size):
            conversations = [[Turn("user", user_message(row, style, processor.image_token))] for row in batch_rows]
            batch = processor.prompts(conversations, [row.load_images() for row in batch_rows])
            new_tokens = model.generate(**to_model(batch, model), max_new_tokens=max_new_tokens, do_sample=False)
            answers = processor.decode(new_tokens)
            cache.add({row.index: answer.strip() for row, answer in zip(batch_rows, answers)})
            bar.update(len(batch_rows))
    return {row.index: cache.values[row.index] for row in rows}
