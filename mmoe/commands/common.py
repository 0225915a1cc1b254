"""Helpers shared by subcommands: get a model from a recipe or a saved directory."""

from __future__ import annotations

from pathlib import Path


def model_from_path(path: str, overrides: list[str] | None = None):
    """A YAML recipe builds a fresh model; a directory loads a saved one."""
    from mmoe.config.load import load_config
    from mmoe.model import build_model, load_model

    if Path(path).is_dir():
        if overrides:
            raise SystemExit("overrides apply to YAML recipes, not saved model directories")
        return load_model(path)
    return build_model(load_config(path, overrides))
