"""Training checkpoints: DeepSpeed state + RNG + data position + an exported model, written atomically.

Layout under ``OUTPUT_DIR/checkpoints``: ``step-0000100/`` (DeepSpeed tag ``state``, ``rng/rank{r}.json``,
``model/`` loadable with ``mmoe.load``), and ``latest`` naming the newest complete one. A checkpoint is
written to ``.tmp-step-…`` and renamed only once every rank has finished, so a kill during a save never
touches the last good checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmoe.config.errors import ConfigError
from mmoe.model.checkpoint import save_model
from mmoe.train.distributed import barrier

CHECKPOINTS = "checkpoints"
LATEST = "latest"
TAG = "state"


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": [v.tolist() if isinstance(v, np.ndarray) else v for v in np.random.get_state()],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state().tolist()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(torch.tensor(state["cuda"], dtype=torch.uint8))


def export_model(engine, model, directory: Path, rank: int) -> None:
    """Write an ``mmoe.load``-able directory (gathering ZeRO-3 partitions first)."""
    import deepspeed

    if engine.zero_optimization_stage() == 3:
        with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
            if rank == 0:
                save_model(model, directory)
    elif rank == 0:
        save_model(model, directory)
    barrier()


def save_checkpoint(engine, model, output_dir: Path, step: int, client: dict, keep_last: int, rank: int) -> Path:
    root = output_dir / CHECKPOINTS
    name = f"step-{step:07d}"
    final, tmp = root / name, root / f".tmp-{name}"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    engine.save_checkpoint(str(tmp), tag=TAG, client_state=client, save_latest=False)
    (tmp / "rng").mkdir(exist_ok=True)
    (tmp / "rng" / f"rank{rank}.json").write_text(json.dumps(rng_state()))
    export_model(engine, model, tmp / "model", rank)
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer = root / f".{LATEST}.tmp"
        pointer.write_text(name)
        os.replace(pointer, root / LATEST)
        for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep_last]:
            shutil.rmtree(old)
    barrier()
    return final


def latest_checkpoint(output_dir: Path) -> Path | None:
    pointer = output_dir / CHECKPOINTS / LATEST
    if not pointer.is_file():
        return None
    path = output_dir / CHECKPOINTS / pointer.read_text().strip()
    return path if path.is_dir() else None


def resolve_resume(resume: str | None, output_dir: Path) -> Path | None:
    """``auto``: the latest checkpoint if any; a path: that checkpoint (must exist); ``none``/null: start fresh."""
    if resume is None or resume == "none":
        return None
    if resume == "auto":
        return latest_checkpoint(output_dir)
    path = Path(resume)
    if not (path / TAG).is_dir():
        raise ConfigError(f"train.resume: {path} is not a checkpoint directory (no '{TAG}' inside)")
    return path


def load_checkpoint(engine, path: Path, rank: int) -> dict:
    """Restore engine (model, optimizer, scheduler), this rank's RNG; return the client state."""
    _, client = engine.load_checkpoint(str(path), tag=TAG, load_module_strict=False)
    rng_file = path / "rng" / f"rank{rank}.json"
    if rng_file.is_file():
        set_rng_state(json.loads(rng_file.read_text()))
    return client or {}
