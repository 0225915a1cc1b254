"""Shared fixtures: the tiny default recipe and small helpers to build batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from mmoe.config import load_config, parse_config
from mmoe.config.schema import MMoEConfig
from mmoe.train.distributed import ONE_PROCESS_GROUP_ENV

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


@pytest.fixture
def tiny_cfg() -> MMoEConfig:
    return load_config(CONFIGS / "tiny.yaml")


def tiny_with(**model_overrides) -> MMoEConfig:
    """The tiny recipe with whole model sections replaced (e.g. ``llm={...}``)."""
    raw = load_config(CONFIGS / "tiny.yaml").model_dump(mode="json")
    raw["model"].update(model_overrides)
    return parse_config(raw)


def child_env(*, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """``os.environ`` for a subprocess: without the one-process group in-process training left (the child
    would try to join it on this process's port), nor the names in ``drop``."""
    return {k: v for k, v in os.environ.items() if k not in (*ONE_PROCESS_GROUP_ENV, *drop)}


def solid_image(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.new("RGB", size, color)


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
