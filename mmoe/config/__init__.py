"""Typed configuration: YAML recipes validated against pydantic schemas, with CLI overrides.

The names are loaded on first use (PEP 562), so importing a submodule such as ``mmoe.config.base``
does not import the schema, which imports ``mmoe.moe.config``, which imports ``mmoe.config.base``.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "ConfigError": "mmoe.config.errors",
    "apply_overrides": "mmoe.config.load",
    "load_config": "mmoe.config.load",
    "parse_config": "mmoe.config.load",
    "MMoEConfig": "mmoe.config.schema",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'mmoe.config' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
