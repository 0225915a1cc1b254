"""Evaluation over several processes: a ``deepspeed`` or ``torchrun`` launch gives each rank every
``world``-th row; each rank caches its own rows, and rank 0 merges them into one predictions file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmoe.eval.benchmark import MCQRow
from mmoe.eval.cache import RowCache
from mmoe.train.distributed import init_distributed


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, rows: list[MCQRow]) -> list[MCQRow]:
        """This rank's rows: every ``world``-th one, starting at ``rank``."""
        return rows[self.rank :: self.world]

    def cache_path(self, folder: Path, kind: str, rank: int | None = None) -> Path:
        rank = self.rank if rank is None else rank
        name = f"{kind}.jsonl" if self.world == 1 else f"{kind}.rank{rank}-of-{self.world}.jsonl"
        return folder / "cache" / name

    def merged(self, folder: Path, kind: str, settings: dict[str, Any], rows: list[MCQRow]) -> dict[int, Any]:
        """On rank 0, after a barrier: every rank's cached values for ``rows``."""
        values: dict[int, Any] = {}
        for rank in range(self.world):
            values.update(RowCache(self.cache_path(folder, kind, rank), settings).values)
        return {row.index: values[row.index] for row in rows}


def launched_ranks() -> Ranks:
    """This process's rank; a launcher's ``WORLD_SIZE`` > 1 starts the process group (gloo on CPU, nccl on GPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Ranks()
    rank, world = init_distributed()
    return Ranks(rank, world)

