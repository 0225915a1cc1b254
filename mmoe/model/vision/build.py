"""Pick the backend named in the config."""

from __future__ import annotations

from pathlib import Path

from mmoe.config.schema import VisionConfig
from mmoe.model.vision.base import VisionTower


def build_vision_tower(cfg: VisionConfig, preprocessing_dir: Path | None = None) -> VisionTower:
    """Build a vision tower; ``preprocessing_dir`` restores saved preprocessing files."""
    if cfg.backend == "hf":
        from mmoe.model.vision.hf import HFVisionTower

        tower: VisionTower = HFVisionTower(cfg, preprocessing_dir)
    elif cfg.backend == "timm":
        from mmoe.model.vision.timm_tower import TimmVisionTower

        tower = TimmVisionTower(cfg, preprocessing_dir)
    else:
        from mmoe.model.vision.open_clip_tower import OpenClipVisionTower

        tower = OpenClipVisionTower(cfg, preprocessing_dir)
    tower.requires_grad_(not cfg.frozen)
    return tower
