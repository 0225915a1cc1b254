"""Load YAML recipes, apply ``a.b.c=value`` overrides, validate against the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mmoe.config.errors import ConfigError, format_validation_error
from mmoe.config.overrides import apply_overrides, read_recipe, read_yaml
from mmoe.config.schema import MMoEConfig

__all__ = ["apply_overrides", "load_config", "parse_config", "read_recipe", "read_yaml"]


def parse_config(raw: dict[str, Any], source: str = "<dict>") -> MMoEConfig:
    """Validate a raw mapping; errors name every bad key and value."""
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {source}: top level must be a mapping, got {type(raw).__name__}")
    try:
        return MMoEConfig.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, MMoEConfig, source) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> MMoEConfig:
    """Read a YAML recipe, apply CLI overrides and validate."""
    raw = apply_overrides(read_recipe(path), overrides or [])
    return parse_config(raw, source=str(path))
