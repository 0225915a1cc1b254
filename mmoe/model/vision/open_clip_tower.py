"""open_clip visual towers (ViT), read token by token through ``forward_intermediates``."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import torch
from PIL import Image

from mmoe.config.errors import ConfigError
from mmoe.config.schema import VisionConfig
from mmoe.model.vision.base import VisionTower

PREPROCESSING_FILE = "open_clip_preprocess.json"
# A minimal text tower, built only because open_clip assembles whole CLIP models; it is discarded.
_UNUSED_TEXT_CFG = {"context_length": 4, "vocab_size": 8, "width": 8, "heads": 1, "layers": 1}


class OpenClipVisionTower(VisionTower):
    def __init__(self, cfg: VisionConfig, preprocessing_dir: Path | None = None) -> None:
        super().__init__(cfg)
        if cfg.config is not None:
            vision_cfg = dict(cfg.config)
            clip = open_clip.create_model(
                cfg.name or "ViT-B-32", pretrained=None, vision_cfg=vision_cfg,
                text_cfg=_UNUSED_TEXT_CFG, embed_dim=vision_cfg.get("width", 64),
            )
        else:
            if cfg.name not in open_clip.list_models() and not cfg.name.startswith(("hf-hub:", "local-dir:")):
                raise ConfigError(f"vision backend open_clip: unknown model {cfg.name!r} (see open_clip.list_models())")
            clip = open_clip.create_model(cfg.name, pretrained=cfg.pretrained)
        self.model = clip.visual
        if not hasattr(self.model, "forward_intermediates") or not hasattr(self.model, "transformer"):
            raise ConfigError(f"vision backend open_clip: {cfg.name!r} has no ViT visual tower with tokens")
        if preprocessing_dir is not None:
            self.preprocess_cfg = json.loads((preprocessing_dir / PREPROCESSING_FILE).read_text())
        else:
            self.preprocess_cfg = {
                "image_size": list(self.model.image_size) if isinstance(self.model.image_size, tuple) else self.model.image_size,
                "mean": list(self.model.image_mean or open_clip.OPENAI_DATASET_MEAN),
                "std": list(self.model.image_std or open_clip.OPENAI_DATASET_STD),
            }
        self._transform = open_clip.image_transform(
            self.preprocess_cfg["image_size"], is_train=False,
            mean=tuple(self.preprocess_cfg["mean"]), std=tuple(self.preprocess_cfg["std"]),
        )
        self.check()

    @property
    def hidden_size(self) -> int:
        return self.model.transformer.width

    @property
    def num_patches(self) -> int:
        grid = self.model.grid_size
        return grid[0] * grid[1]

    @property
    def has_cls_token(self) -> bool:
        return getattr(self.model, "class_embedding", None) is not None

    @property
    def image_mean(self) -> tuple[float, float, float]:
        return tuple(self.preprocess_cfg["mean"])


    def layer_tokens(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        out = self.model.forward_intermediates(
            pixel_values, indices=[self.block_index(len(self.model.transformer.resblocks))], stop_early=True,
            intermediates_only=True, output_fmt="NLC", output_extra_tokens=True,
        )
        patches = out["image_intermediates"][0]
        cls = out["image_intermediates_prefix"][0][:, :1] if self.has_cls_token else None
        return cls, patches

    def transform(self, images: list[Image.Image]) -> torch.Tensor:
        return torch.stack([self._transform(img) for img in images])

    def save_preprocessing(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / PREPROCESSING_FILE).write_text(json.dumps(self.preprocess_cfg, indent=2))
