"""mmoe: multilingual multimodal instruction tuning with mixture-of-experts joints.

The public names are imported on first use, so ``import mmoe`` (and ``mmoe --help``) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "MMoEModel": "mmoe.model",
    "MMoEProcessor": "mmoe.model",
    "build_model": "mmoe.model",
    "load_model": "mmoe.model",
    "save_model": "mmoe.model",
    "load": "mmoe.interop.hub",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'mmoe' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
