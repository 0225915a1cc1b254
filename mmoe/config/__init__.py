"""Typed configuration: YAML recipes validated against pydantic schemas, with CLI overrides."""

from mmoe.config.errors import ConfigError
from mmoe.config.load import apply_overrides, load_config, parse_config
from mmoe.config.schema import MMoEConfig

__all__ = ["ConfigError", "MMoEConfig", "apply_overrides", "load_config", "parse_config"]
