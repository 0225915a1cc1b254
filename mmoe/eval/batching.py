"""Shared helpers for running a model over benchmark rows: batches, devices, progress bars."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from mmoe.eval.benchmark import MCQRow


def by_length(rows: list[MCQRow]) -> list[MCQRow]:
    """Rows sorted by prompt length, so batches need little padding; the order is deterministic."""
    return sorted(rows, key=lambda r: (len(r.question) + len(r.hint or "") + sum(map(len, r.options.values())), r.index))


def batches(rows: list[MCQRow], batch_size: int) -> Iterator[list[MCQRow]]:
    ordered = by_length(rows)
    for start in range(0, len(ordered), batch_size):
        yield ordered[start : start + batch_size]


def to_model(batch: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """Move a batch to the model's device; pixels take the vision tower's dtype."""
    out = {k: v.to(model.device) for k, v in batch.items()}
    if "pixel_values" in out:
        out["pixel_values"] = out["pixel_values"].to(next(model.vision_tower.parameters()).dtype)
    return out


def progress_bar(total: int, done: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=desc, unit="row", disable=not enabled, dynamic_ncols=True)
