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
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmoe.config.errors import ConfigError
from mmoe.errors import MMoEError
from mmoe.model.checkpoint import CONFIG_FILE, save_model
from mmoe.train.distributed import barrier
from mmoe.train.safe_load import CheckpointReader, CorruptCheckpointError, safe_torch_load

CHECKPOINTS = "checkpoints"
LATEST = "latest"
TAG = "state"
MODEL_STATES = "mp_rank_00_model_states.pt"


class CheckpointWriteError(MMoEError):
    """A checkpoint could not be written (disk full, permissions); the last good one is untouched."""


class ResumeError(MMoEError):
    """No checkpoint can be resumed as asked (all corrupt, a stale ``latest``, a state that does not fit)."""


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
    """Write ``step-N`` atomically; a failed write (disk full) raises ``CheckpointWriteError`` naming the
    directory and the last good checkpoint, and leaves that one as it was."""
    root = output_dir / CHECKPOINTS
    name = f"step-{step:07d}"
    try:
        return _save(engine, model, root, name, client, keep_last, rank)
    except (OSError, RuntimeError) as exc:
        # torch's zip writer reports a failed write (disk full, file size limit) as a RuntimeError.
        if isinstance(exc, RuntimeError) and "inline_container" not in str(exc) and "PytorchStreamWriter" not in str(exc):
            raise
        cause = f"{exc.strerror} ({exc.filename})" if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        free = shutil.disk_usage(root).free if root.exists() else None
        raise CheckpointWriteError(
            f"cannot write checkpoint {root / name}: {cause}"
            + (f"; {free / 2**30:.2f} GiB free there" if free is not None else "")
            + f"; last good checkpoint: {latest_checkpoint(output_dir) or 'none'}"
        ) from exc


def _save(engine, model, root: Path, name: str, client: dict, keep_last: int, rank: int) -> Path:
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


@dataclass
class ResumePoint:
    """The checkpoint a run resumes from, its saved recipe (None for checkpoints without one) and the
    warnings about newer checkpoints that were passed over."""

    path: Path
    step: int
    recipe: dict | None
    world_size: int | None = None
    skipped: list[str] = field(default_factory=list)


def verify_checkpoint(path: Path, rank: int, trust_pickle: bool = False) -> ResumePoint:
    """Check that every state file is an intact archive whose contents load without running code, and read
    the step. ``UnsafeCheckpointError`` (refuse) and ``CorruptCheckpointError`` (try an older one) name the file."""
    state = path / TAG
    if not (state / MODEL_STATES).is_file():
        raise CorruptCheckpointError(f"{path}: no {TAG}/{MODEL_STATES}")
    step, world = None, None
    for file in sorted(state.glob("*.pt")):
        _check_archive(file)
        loaded = safe_torch_load(file, mmap=True, trust_pickle=trust_pickle)
        if file.name == MODEL_STATES:
            step = loaded.get("step") if isinstance(loaded, dict) else None
            world = loaded.get("dp_world_size")
            if not isinstance(step, int):
                raise CorruptCheckpointError(f"{file}: no integer 'step' in the client state")
    rng = path / "rng" / f"rank{rank}.json"
    if rng.is_file():
        try:
            json.loads(rng.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptCheckpointError(f"{rng}: not valid JSON ({exc})") from None
    recipe_file = path / "model" / CONFIG_FILE
    recipe = None
    if recipe_file.is_file():
        import yaml

        try:
            recipe = yaml.safe_load(recipe_file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise CorruptCheckpointError(f"{recipe_file}: unreadable ({exc})") from None
    return ResumePoint(path, step, recipe if isinstance(recipe, dict) else None, world if isinstance(world, int) else None)


def _check_archive(file: Path) -> None:
    """CRC of every member: finds truncated and bit-flipped files before DeepSpeed reads half a state."""
    if not zipfile.is_zipfile(file):
        return  # legacy (non-zip) torch files: the weights-only load decides
    try:
        with zipfile.ZipFile(file) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CorruptCheckpointError(f"{file}: damaged archive ({exc})") from None
    if bad is not None:
        raise CorruptCheckpointError(f"{file}: damaged archive (member {bad!r} fails its CRC)")


def _candidates(output_dir: Path, skipped: list[str]) -> list[Path]:
    """``latest`` first (when it names a directory), then every ``step-*`` directory, newest first."""
    root = output_dir / CHECKPOINTS
    steps = sorted((p for p in root.glob("step-*") if p.is_dir()), key=lambda p: p.name, reverse=True)
    pointer = root / LATEST
    if not pointer.is_file():
        return steps
    named = root / pointer.read_text().strip()
    if not named.is_dir():
        skipped.append(f"{pointer} names {named.name}, which is not there")
        return steps
    return [named] + [p for p in steps if p != named]


def resolve_resume(resume: str | None, output_dir: Path, rank: int = 0, trust_pickle: bool = False) -> ResumePoint | None:
    """``auto``: the newest intact checkpoint (a stale ``latest`` or a corrupt newer one is passed over with a
    warning); a path: that checkpoint, which must be intact; ``none``/null: start fresh. Never a silent
    fresh start over existing checkpoints."""
    if resume is None or resume == "none":
        return None
    if resume != "auto":
        path = Path(resume)
        if not (path / TAG).is_dir():
            raise ConfigError(f"train.resume: {path} is not a checkpoint directory (no '{TAG}' inside)")
        return verify_checkpoint(path, rank, trust_pickle)
    skipped: list[str] = []
    for path in _candidates(output_dir, skipped):
        try:
            point = verify_checkpoint(path, rank, trust_pickle)
        except CorruptCheckpointError as exc:
            skipped.append(f"{path.name} is unusable: {exc}")
            continue
        point.skipped = skipped
        for message in skipped:
            warnings.warn(f"resume: {message}; resuming from the older {path.name}")
        return point
    if skipped:
        raise ResumeError(
            f"train.resume=auto found no intact checkpoint in {output_dir / CHECKPOINTS}: " + "; ".join(skipped)
            + ". Nothing was overwritten; set train.resume=none to start fresh there, or choose another train.output_dir"
        )
    return None


def load_checkpoint(engine, point: ResumePoint, rank: int, trust_pickle: bool = False) -> dict:
    """Restore engine (model, optimizer, scheduler) through the allow-list reader, and this rank's RNG;
    return the client state. A state that does not fit this model raises ``ResumeError``."""
    if not isinstance(engine.checkpoint_engine, CheckpointReader):
        engine.checkpoint_engine = CheckpointReader(engine.checkpoint_engine, trust_pickle)
    try:
        _, client = engine.load_checkpoint(str(point.path), tag=TAG, load_module_strict=False)
    except (RuntimeError, KeyError, ValueError, IndexError) as exc:
        if isinstance(exc, MMoEError):
            raise
        raise ResumeError(
            f"cannot restore {point.path} into this model: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}. "
            "The architecture or the trainable groups differ from the checkpoint's; to start from its weights "
            f"in a new run, use train.init_from={point.path / 'model'} with another train.output_dir"
        ) from exc
    rng_file = point.path / "rng" / f"rank{rank}.json"
    if rng_file.is_file():
        set_rng_state(json.loads(rng_file.read_text()))
    return client or {}
