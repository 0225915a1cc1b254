"""Metric sinks named by ``train.report_to``: TensorBoard event files and Weights & Biases (offline by default)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Protocol

from mmoe.config.errors import ConfigError

WANDB_MISSING = ("train.report_to lists wandb, but the 'wandb' package is not installed; "
                 "install it (pip install wandb) or remove wandb from train.report_to")


class Reporter(Protocol):
    def log(self, step: int, values: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class TensorBoardReporter:
    def __init__(self, output_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(output_dir / "tensorboard"))

    def log(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.close()


def require_wandb():
    """The wandb module, or a ConfigError saying it is missing (checked before any training work)."""
    try:
        import wandb
    except ImportError:
        raise ConfigError(WANDB_MISSING) from None
    return wandb


class WandbReporter:
    """One wandb run per output directory (its id is kept there, so a resumed run continues it).

    The mode is ``offline`` unless ``WANDB_MODE`` says otherwise: training never waits on the network;
    ``wandb sync OUTPUT_DIR/wandb/offline-run-*`` uploads later.
    """

    def __init__(self, output_dir: Path, run_config: dict[str, Any], project: str) -> None:
        wandb = require_wandb()
        id_file = output_dir / "wandb_run_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:8]
        id_file.write_text(run_id)
        self.run = wandb.init(
            project=project, id=run_id, resume="allow", dir=str(output_dir), config=run_config,
            mode=os.environ.get("WANDB_MODE", "offline"),
        )

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


def open_reporters(names: list[str], output_dir: Path, run_config: dict[str, Any], project: str) -> list[Reporter]:
    reporters: list[Reporter] = []
    for name in dict.fromkeys(names):
        reporters.append(TensorBoardReporter(output_dir) if name == "tensorboard" else WandbReporter(output_dir, run_config, project))
    return reporters
