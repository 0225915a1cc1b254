"""What one ``mmoe bench`` run measures on: device, dtype, size preset, rounds."""

from __future__ import annotations

from dataclasses import dataclass

import torch

SIZES = ("tiny", "cpu", "full")  # tiny: the test's; cpu: a 2-core machine, minutes; full: the GPU shapes


@dataclass(frozen=True)
class BenchSettings:
    device: torch.device
    dtype: torch.dtype
    size: str
    warmup: int
    repeats: int

    def sync(self) -> None:
        """Wait for queued device work so a host clock times it (no-op on CPU)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def pick(self, table: dict[str, dict]) -> dict:
        """This run's entry of a case's per-size table."""
        return dict(table[self.size])
