"""A resumable, rank-sharded batch iterator: the data position is part of the checkpoint.

Each epoch draws a permutation from ``(seed, epoch)`` (optionally grouped by length), so the order
is a pure function of the position and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator, Sequence

import torch


class ResumableLoader:
    def __init__(
        self,
        dataset: Sequence,
        collate: Callable[[list], dict],
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        order: Callable[[int], list[int]] | None = None,
    ) -> None:
        if len(dataset) < batch_size * world_size:
            raise ValueError(f"dataset has {len(dataset)} samples, fewer than one global batch ({batch_size} x {world_size} ranks)")
        self.dataset, self.collate = dataset, collate
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.order = order or self._random_order
        self.epoch, self.position = 0, 0
        self.skipped: list[dict] = []

    def _random_order(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.dataset), generator=g).tolist()

    @property
    def batches_per_epoch(self) -> int:
        return len(self.dataset) // (self.batch_size * self.world_size)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def _sample(self, index: int):
        """Load one sample; a broken one is reported and replaced by the next loadable sample."""
        for offset in range(len(self.dataset)):
            i = (index + offset) % len(self.dataset)
            try:
                return self.dataset[i]
            except Exception as exc:  # noqa: BLE001 - one bad sample must never stop training
                self.skipped.append({"index": i, "error": f"{type(exc).__name__}: {exc}"})
                warnings.warn(f"skipping sample {i}: {type(exc).__name__}: {exc}")
        raise RuntimeError("no sample in the dataset could be loaded")

    def __iter__(self) -> Iterator[dict]:
        while True:
            order = self.order(self.epoch)
            global_batch = self.batch_size * self.world_size
            while self.position < self.batches_per_epoch:
                start = self.position * global_batch + self.rank * self.batch_size
                indices = order[start : start + self.batch_size]
                self.position += 1
                yield self.collate([self._sample(i) for i in indices])
            self.epoch, self.position = self.epoch + 1, 0
