"""Shared helpers for running a model over benchmark rows: batches, devices, progress bars."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch

from mmoe.eval.benchmark import MCQRow
from mmoe.eval.choices import DTYPE_CHOICES


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


def eval_device(device: str | None) -> torch.device:
    """``device`` when given; else this process's GPU when CUDA is present (``LOCAL_RANK`` under a launcher), else CPU."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def eval_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: bfloat16 on a GPU that supports it, float32 otherwise."""
    if dtype not in DTYPE_CHOICES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPE_CHOICES)}, not {dtype!r}")
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, dtype)
