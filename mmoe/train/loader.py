"""A resumable batch iterator: the data position is part of the checkpoint.

Each epoch's batches for this rank come from ``plan(epoch)``, a pure function of the epoch (the
length-grouped sampler, or a seeded permutation), so a resumed run sees exactly the batches it
would have seen. Batches are loaded by a ``DataLoader`` (worker processes when ``num_workers > 0``)
fed the epoch's remaining batches. A sample that fails to load is reported and replaced by the next
loadable one; training never dies on it.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

BatchPlan = Callable[[int], list[list[int]]]


def random_plan(size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> BatchPlan:
    """Seeded shuffles cut into global batches; this rank takes its slice of each (drop the remainder)."""
    global_batch = batch_size * world_size
    if size < global_batch:
        raise ValueError(f"dataset has {size} samples, fewer than one global batch ({batch_size} x {world_size} ranks)")

    def plan(epoch: int) -> list[list[int]]:
        order = torch.randperm(size, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()
        starts = range(0, size - global_batch + 1, global_batch)
        return [order[s + rank * batch_size : s + (rank + 1) * batch_size] for s in starts]

    return plan


class _Tolerant(Dataset):
    """``dataset[i]`` as ``(index used, sample, errors)``: a broken sample is replaced by the next loadable one."""

    def __init__(self, dataset: Sequence) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        errors = []
        for offset in range(len(self.dataset)):
            i = (index + offset) % len(self.dataset)
            try:
                return i, self.dataset[i], errors
            except Exception as exc:  # noqa: BLE001 - one bad sample must never stop training
                errors.append({"index": i, "error": f"{type(exc).__name__}: {exc}"})
        raise RuntimeError(f"no sample in the dataset could be loaded (first error: {errors[0]['error']})")


class ResumableLoader:
    def __init__(self, dataset: Sequence, collate: Callable[[list], dict], plan: BatchPlan, num_workers: int = 0) -> None:
        self.dataset, self.collate, self.plan, self.num_workers = _Tolerant(dataset), collate, plan, num_workers
        self.epoch, self.position = 0, 0
        self.skipped: list[dict] = []

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def batches_per_epoch(self) -> int:
        """This rank's micro-batches in one epoch (what ``train.epochs`` is converted with)."""
        return len(self.plan(0))

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def _collate(self, loaded: list) -> dict:
        batch = self.collate([sample for _, sample, _ in loaded])
        batch["ids"] = [i for i, _, _ in loaded]
        batch["errors"] = [e for _, _, errors in loaded for e in errors]
        return batch

    def in_order(self, batch_size: int) -> Iterator[dict]:
        """Every sample once, in index order, in batches of ``batch_size``: one pass over the data (RoMA's
        index, Router Lens' counts) that leaves the training position untouched."""
        size = len(self.dataset)
        chunks = [list(range(start, min(start + batch_size, size))) for start in range(0, size, batch_size)]
        for batch in DataLoader(self.dataset, batch_sampler=chunks, collate_fn=self._collate, num_workers=self.num_workers):
            batch.pop("errors")
            yield batch

    def __iter__(self) -> Iterator[dict]:
        while True:
            batches = self.plan(self.epoch)
            if not batches:
                raise ValueError("the data plan yields no batch for an epoch (dataset smaller than a global batch?)")
            remaining = batches[self.position :]
            loader = DataLoader(self.dataset, batch_sampler=remaining, collate_fn=self._collate, num_workers=self.num_workers)
            for batch in loader:
                self.position += 1
                for error in batch.pop("errors"):
                    self.skipped.append(error)
                    warnings.warn(f"skipping sample {error['index']}: {error['error']}")
                yield batch
            self.epoch, self.position = self.epoch + 1, 0
