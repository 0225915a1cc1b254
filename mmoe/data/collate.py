"""Batch samples: pad ids and labels, stack pixels in reading order, per-token language ids."""

from __future__ import annotations

from typing import Any

import torch

from mmoe.model.splice import IGNORE_INDEX

# The keys of a batch that ``MMoEModel.forward`` takes; the rest are statistics.
MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "labels", "pixel_values", "language_ids")


class Collator:
    """``samples -> batch`` for ``MMoEModel.forward``.

    ``pixel_values`` holds every image of the batch in reading order (sample by sample), absent when
    the batch has none. ``language_ids`` is ``[B, L]`` like the routing context's other per-token
    facts (each sample's language on all its positions). ``image_counts``, ``num_truncated`` and
    ``num_unsupervised`` are for logging.
    """

    def __init__(self, pad_token_id: int, padding_side: str = "right") -> None:
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(s["input_ids"]) for s in samples)
        batch = len(samples)
        input_ids = torch.full((batch, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((batch, width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((batch, width), dtype=torch.long)
        language_ids = torch.empty((batch, width), dtype=torch.long)
        for row, sample in enumerate(samples):
            n = len(sample["input_ids"])
            span = slice(0, n) if self.padding_side == "right" else slice(width - n, width)
            input_ids[row, span] = sample["input_ids"]
            labels[row, span] = sample["labels"]
            attention_mask[row, span] = 1
            language_ids[row] = sample["language_id"]
        out = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "language_ids": language_ids,
            "image_counts": torch.tensor([s["num_images"] for s in samples], dtype=torch.long),
            "num_truncated": torch.tensor(sum(bool(s["truncated"]) for s in samples)),
            "num_unsupervised": torch.tensor(sum(not s["supervised"] for s in samples)),
        }
        pixels = [s["pixel_values"] for s in samples if s["pixel_values"] is not None and s["num_images"]]
        if pixels:
            out["pixel_values"] = torch.cat(pixels, dim=0)
        return out


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The part of a batch that ``MMoEModel.forward`` accepts."""
    return {k: batch[k] for k in MODEL_INPUT_KEYS if k in batch}
