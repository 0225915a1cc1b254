"""Shared fixtures: the tiny default recipe and small helpers to build batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from mmoe.config import load_config, parse_config
from mmoe.config.schema import MMoEConfig

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


# In-process training leaves a one-process group's setup in os.environ (mmoe.train.distributed); a child
# process that inherited it would try to join this process's group on its port.
DISTRIBUTED_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def child_env(*, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """``os.environ`` for a subprocess: without this process's distributed setup, nor the names in ``drop``."""
    return {k: v for k, v in os.environ.items() if k not in (*DISTRIBUTED_ENV, *drop)}


def solid_image(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.new("RGB", size, color)


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
