"""Per-step metrics (rank 0 only): JSONL (one line per logged step), the ``report_to`` sinks, and the console.

On a terminal the console shows a tqdm bar; otherwise (a log file, a scheduler) or with
``progress=false`` it prints one plain line per logged step, so log files hold no carriage returns.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import torch

from mmoe.train.reporters import Reporter, open_reporters


def to_jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu().tolist() if value.numel() > 1 else float(value.detach().float().cpu())
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def scalars(prefix: str, value: Any):
    """Flatten nested metrics into ``a/b/c`` tags; lists become one tag per index; non-finite values are left out."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from scalars(f"{prefix}/{k}" if prefix else k, v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from scalars(f"{prefix}/{i}", v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        yield prefix, value


def log_line(step: int, total_steps: int, record: dict[str, Any]) -> str:
    """``step 10/100 | loss 1.2345 | lr 1.00e-03 | ...``: the numbers a person scans in a log file."""
    parts = [f"step {step}/{total_steps}"]
    for key in ("loss", "lm_loss", "eval/loss"):
        value = record.get("eval", {}).get("loss") if key == "eval/loss" else record.get(key)
        if isinstance(value, float):
            parts.append(f"{key} {value:.4f}")
    lrs = record.get("lr") or {}
    if lrs:
        parts.append("lr " + ",".join(f"{lr:.2e}" for lr in dict.fromkeys(lrs.values())))
    if isinstance(record.get("grad_norm"), float):
        parts.append(f"grad_norm {record['grad_norm']:.3f}")
    if "tokens_per_s" in record:
        parts.append(f"tok/s {record['tokens_per_s']:.0f}")
    return " | ".join(parts)


class MetricsLogger:
    def __init__(
        self, output_dir: Path, *, rank: int, total_steps: int, start_step: int, report_to: list[str], progress: bool,
        run_config: dict[str, Any], wandb_project: str,
    ) -> None:
        self.enabled = rank == 0
        self.path = output_dir / "metrics.jsonl"
        self.total_steps = total_steps
        self.reporters: list[Reporter] = []
        self.bar = None
        if not self.enabled:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        self._truncate_after(start_step)
        self.reporters = open_reporters(report_to, output_dir, run_config, wandb_project)
        if progress and sys.stdout.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True, file=sys.stdout)

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
        values = dict(scalars("", {k: v for k, v in record.items() if k != "step"}))
        for reporter in self.reporters:
            reporter.log(step, values)
        if self.bar is None:
            print(log_line(step, self.total_steps, record), flush=True)
            return
        self.bar.update(step - self.bar.n)
        postfix = {"loss": f"{record.get('loss', math.nan):.4f}", "tok_s": f"{record.get('tokens_per_s', 0):.0f}"}
        if "eval" in record:
            postfix["eval_loss"] = f"{record['eval']['loss']:.4f}"
        self.bar.set_postfix(postfix)

    def close(self) -> None:
        for reporter in self.reporters:
            reporter.close()
        if self.bar is not None:
            self.bar.close()
