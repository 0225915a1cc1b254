"""Length-grouped batching (LLaVA's ``group_by_modality_length``), for one or many ranks.

Indices are shuffled, cut into mega-batches, sorted by length inside each mega-batch and cut into
batches, so a batch holds similar lengths (little padding) while the order stays random. With
``has_image`` given, image and text-only samples never share a batch. Every rank sees the same
global order and takes its own share of each global batch; all ranks get the same number of batches.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class LengthGroupedBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        has_image: Sequence[bool] | None = None,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        mega_batch_mult: int = 50,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1 or num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"bad batch_size={batch_size} / num_replicas={num_replicas} / rank={rank}")
        self.lengths = np.asarray(lengths)
        self.has_image = None if has_image is None else np.asarray(has_image, dtype=bool)
        self.batch_size, self.num_replicas, self.rank = batch_size, num_replicas, rank
        self.seed, self.mega_batch_mult, self.drop_last = seed, mega_batch_mult, drop_last
        self.epoch = 0
        self._cached: tuple[int, list[np.ndarray]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_batches(self) -> list[np.ndarray]:
        if self._cached is None or self._cached[0] != self.epoch:
            self._cached = (self.epoch, self._build())
        return self._cached[1]

    def _build(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        world = self.batch_size * self.num_replicas
        groups = [np.arange(len(self.lengths))]
        if self.has_image is not None:
            groups = [np.nonzero(self.has_image)[0], np.nonzero(~self.has_image)[0]]
        batches = []
        for group in groups:
            if not len(group):
                continue
            order = rng.permutation(group)
            mega = world * self.mega_batch_mult
            for start in range(0, len(order), mega):
                chunk = order[start : start + mega]
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                batches += [chunk[i : i + world] for i in range(0, len(chunk), world)]
        full = [b for b in batches if len(b) == world]
        partial = [b for b in batches if len(b) < world]
        if not self.drop_last and partial:
            rest = np.concatenate(partial)
            rest = rest[np.argsort(-self.lengths[rest], kind="stable")]
            for i in range(0, len(rest), world):
                piece = rest[i : i + world]
                if len(piece) < world:  # wrap around so every rank gets a full batch
                    piece = np.concatenate([piece, np.resize(rest, world - len(piece))])
                full.append(piece)
        return [full[i] for i in rng.permutation(len(full))]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._global_batches():
            yield batch[self.rank :: self.num_replicas].tolist()

    def __len__(self) -> int:
        return len(self._global_batches())
