"""Read DeepSpeed ``.pt`` state without running code from it.

``torch.load(weights_only=True)`` only rebuilds tensors, containers and primitive values; the few
DeepSpeed classes a ZeRO checkpoint stores are allowed by name (``ALLOWED_GLOBALS``). A file that needs
anything else is refused with its name and the global it asked for. ``CheckpointReader`` replaces the
engine's checkpoint engine for loads, so every file DeepSpeed reads on resume goes through this check.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from mmoe.errors import MMoEError


class UnsafeCheckpointError(MMoEError):
    """A checkpoint file asks the unpickler for code or types outside the allow-list."""


class CorruptCheckpointError(MMoEError):
    """A checkpoint file or directory is missing, truncated or unreadable."""


def allowed_globals() -> list[type]:
    """The non-tensor types DeepSpeed's ZeRO stage 0-3 states hold: loss scalers, the stage enum,
    and the fragment addresses of ``param_slice_mappings``. Each is a plain value holder."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


def safe_torch_load(path: str | Path, map_location: Any = "cpu", mmap: bool = False, trust_pickle: bool = False) -> Any:
    """``torch.load`` restricted to tensors, containers and ``allowed_globals``; refusals name the file.
    ``trust_pickle`` (a checkpoint the user vouches for, see docs/security.md) lifts the restriction."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return torch.load(path, map_location=map_location, weights_only=not trust_pickle,
                              mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        detail = str(exc).split("\n")
        reason = next((line.strip() for line in detail if "Unsupported" in line or "GLOBAL" in line), detail[0])
        raise UnsafeCheckpointError(
            f"{path}: refused, loading it would run code or build types outside the allow-list ({reason[:300]}); "
            "if you made this checkpoint yourself with another DeepSpeed version, see docs/security.md "
            "(train.resume_trust_pickle)"
        ) from None
    except FileNotFoundError:
        raise CorruptCheckpointError(f"{path}: file not found") from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise CorruptCheckpointError(f"{path}: unreadable ({type(exc).__name__}: {str(exc)[:200]})") from None


class CheckpointReader:
    """Wraps DeepSpeed's checkpoint engine: saves go to it unchanged, loads go through ``safe_torch_load``."""

    def __init__(self, engine: Any, trust_pickle: bool = False) -> None:
        self._engine = engine
        self._trust_pickle = trust_pickle

    def load(self, path: str, map_location: Any = None) -> Any:
        return safe_torch_load(path, "cpu" if map_location is None else map_location, trust_pickle=self._trust_pickle)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)
