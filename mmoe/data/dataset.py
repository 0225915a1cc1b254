"""The training dataset: prepared records -> token ids, labels on assistant turns, pixels.

Tokenisation goes through ``MMoEProcessor.encode`` (the chat template, ``<image>`` expanded to the
model's visual-token count, labels only on assistant replies) and ``encode_within`` (fit to
``max_length`` without cutting an image). Samples may hold several images or none.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from mmoe.data.prepared import Prepared, load_prepared
from mmoe.data.truncation import encode_within, has_supervision
from mmoe.images import decode, decode_file
from mmoe.languages import language_id
from mmoe.model.processor import MMoEProcessor
from mmoe.tokenization.templates import Turn


def open_image(image: dict[str, Any], root: str | None) -> Image.Image:
    """A prepared image cell (``{"path", "bytes"}``) as an RGB image, decoded as prep checked it: a path
    must stay inside its source's image root (symlinks resolved)."""
    if image.get("bytes") is not None:
        return decode(image["bytes"])
    return decode_file(image["path"], root or ".")


class ConversationDataset(Dataset):
    """One or more prepared datasets as model-ready samples."""

    def __init__(self, parts: list[Prepared], processor: MMoEProcessor, max_length: int) -> None:
        if not parts:
            raise ValueError("ConversationDataset needs at least one prepared dataset")
        self.parts = parts
        self.processor = processor
        self.max_length = max_length
        self._offsets = np.cumsum([0] + [len(p) for p in parts]).tolist()

    @classmethod
    def from_paths(cls, paths: list[str] | str, processor: MMoEProcessor, max_length: int, image_roots: dict[str, str] | None = None) -> "ConversationDataset":
        paths = [paths] if isinstance(paths, str) else paths
        return cls([load_prepared(p, image_roots) for p in paths], processor, max_length)

    def __len__(self) -> int:
        return self._offsets[-1]

    def _locate(self, index: int) -> tuple[Prepared, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        part = bisect.bisect_right(self._offsets, index) - 1
        return self.parts[part], index - self._offsets[part]

    @property
    def lengths(self) -> np.ndarray:
        """Token count per sample for this model (text tokens + visual tokens), for length grouping."""
        per_image = self.processor.tokens_per_image
        out = [
            np.asarray(p.records["num_text_tokens"], dtype=np.int64) + per_image * np.asarray(p.records["num_images"], dtype=np.int64)
            for p in self.parts
        ]
        return np.minimum(np.concatenate(out), self.max_length)

    @property
    def has_image(self) -> np.ndarray:
        return np.concatenate([np.asarray(p.records["num_images"]) > 0 for p in self.parts])

    def __getitem__(self, index: int) -> dict[str, Any]:
        part, local = self._locate(index)
        row = part.records[local]
        turns = [Turn(t["role"], t["content"]) for t in row["conversations"]]
        fitted = encode_within(self.processor, turns, self.max_length)
        encoded = fitted.encoded
        root = part.image_roots.get(row["source"])
        images = [open_image(im, root) for im in row["images"][: encoded.num_images]]
        return {
            "input_ids": torch.tensor(encoded.input_ids, dtype=torch.long),
            "labels": torch.tensor(encoded.labels, dtype=torch.long),
            "pixel_values": self.processor.pixel_values(images),
            "num_images": encoded.num_images,
            "language_id": language_id(row["language"]),
            "truncated": fitted.truncated,
            "supervised": has_supervision(encoded),
        }
