"""What one ``mmoe bench`` run measures on: device, dtype, size preset, rounds."""

from __future__ import annotations

import time
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
    clock: str = "wall"  # wall: time.perf_counter; cpu: this process's CPU time (CPU device only)

    def __post_init__(self) -> None:
        if self.clock not in ("wall", "cpu"):
            raise ValueError(f"clock must be 'wall' or 'cpu', got '{self.clock}'")
        if self.clock == "cpu" and self.device.type != "cpu":
            raise ValueError("clock 'cpu' counts this process's CPU time, which does not see device work: use it with device cpu")

    def now(self) -> float:
        """Seconds on the run's clock. The CPU clock leaves out the time other processes hold the cores,
        so it suits a shared machine; it counts every thread of the process (idle spinning included)."""
        return time.perf_counter() if self.clock == "wall" else time.process_time()

    def sync(self) -> None:
        """Wait for queued device work so a host clock times it (no-op on CPU)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def pick(self, table: dict[str, dict]) -> dict:
        """This run's entry of a case's per-size table."""
        return dict(table[self.size])
