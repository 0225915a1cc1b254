"""Per-step metrics: JSONL (one line per step), TensorBoard scalars, and a tqdm progress bar (rank 0 only)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm


def to_jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu().tolist() if value.numel() > 1 else float(value.detach().float().cpu())
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def _scalars(prefix: str, value: Any):
    """Flatten nested metrics into TensorBoard tags; lists become one tag per index."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _scalars(f"{prefix}/{k}" if prefix else k, v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _scalars(f"{prefix}/{i}", v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        yield prefix, value


class MetricsLogger:
    def __init__(self, output_dir: Path, rank: int, max_steps: int, start_step: int, tensorboard: bool, progress: bool) -> None:
        self.enabled = rank == 0
        self.path = output_dir / "metrics.jsonl"
        self.writer = None
        self.bar = None
        if not self.enabled:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        self._truncate_after(start_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(output_dir / "tensorboard"))
        if progress:
            self.bar = tqdm(total=max_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)

    def _truncate_after(self, step: int) -> None:
        """On resume, drop lines written after the checkpoint so every step appears once."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **to_jsonable(metrics)}
        with self.path.open("a") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.writer is not None:
            for tag, value in _scalars("", {k: v for k, v in record.items() if k != "step"}):
                self.writer.add_scalar(tag, value, step)
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{record['loss']:.4f}", tok_s=f"{record.get('tokens_per_s', 0):.0f}")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.bar is not None:
            self.bar.close()
