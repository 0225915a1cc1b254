"""Evaluation recipes (``eval/*.yaml``): which benchmark files, where they live, and how to run them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import ValidationError

from mmoe.config.base import StrictModel
from mmoe.config.errors import ConfigError, format_validation_error
from mmoe.eval.choices import MODE_CHOICES, STYLES


class EvalRecipe(StrictModel):
    """Benchmarks are file names or paths; relative ones resolve against ``data_root``."""

    name: str
    description: str = ""
    data_root: str = "~/LMUData"
    benchmarks: list[str]
    mode: Literal[MODE_CHOICES] = "auto"
    style: Literal[STYLES] = "vlmevalkit"
    batch_size: int = 8
    max_new_tokens: int = 64
    likelihood: bool = False
    downloads: dict[str, str] = {}

    def paths(self, data_root: str | None = None) -> list[Path]:
        root = Path(os.path.expanduser(os.path.expandvars(data_root or self.data_root)))
        return [Path(b) if Path(b).is_absolute() else root / b for b in self.benchmarks]

    def check_present(self, data_root: str | None = None) -> None:
        """Fail before loading a model when files are absent, saying where to download them."""
        missing = [path for path in self.paths(data_root) if not path.exists()]
        if missing:
            lines = [f"{path}  <-  {self.downloads.get(path.name, 'see eval/README.md')}" for path in missing]
            raise ConfigError(f"recipe {self.name}: benchmark files missing (download them first):\n  " + "\n  ".join(lines))


def load_recipe(path: str | Path) -> EvalRecipe:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the recipe ({exc})") from exc
    try:
        return EvalRecipe.model_validate(raw)
    except ValidationError as err:
        raise format_validation_error(err, EvalRecipe, str(path)) from None
