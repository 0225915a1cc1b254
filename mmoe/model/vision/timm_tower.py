"""timm ViT-like models (anything with ``forward_intermediates`` and prefix/patch tokens)."""

from __future__ import annotations

import json
from pathlib import Path

import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_model_data_config

from mmoe.config.errors import ConfigError
from mmoe.config.schema import VisionConfig
from mmoe.model.vision.base import VisionTower

PREPROCESSING_FILE = "timm_data_config.json"


class TimmVisionTower(VisionTower):
    def __init__(self, cfg: VisionConfig, preprocessing_dir: Path | None = None) -> None:
        super().__init__(cfg)
        kwargs = dict(cfg.config or {})
        if cfg.pretrained:
            kwargs["pretrained_cfg_overlay"] = {"file": cfg.pretrained}
        if cfg.name not in timm.list_models() and not timm.is_model(cfg.name):
            raise ConfigError(f"vision backend timm: unknown architecture {cfg.name!r} (see timm.list_models())")
        self.model = timm.create_model(cfg.name, pretrained=bool(cfg.pretrained), num_classes=0, **kwargs)
        if not hasattr(self.model, "forward_intermediates") or not hasattr(self.model, "num_prefix_tokens"):
            raise ConfigError(f"vision backend timm: {cfg.name!r} is not ViT-like (no prefix/patch tokens)")
        if preprocessing_dir is not None:
            self.data_config = json.loads((preprocessing_dir / PREPROCESSING_FILE).read_text())
        else:
            self.data_config = resolve_model_data_config(self.model)
            # The pretrained default size may differ from a model built with another img_size.
            self.data_config["input_size"] = (3, *self.model.patch_embed.img_size)
        self._transform = create_transform(**self.data_config, is_training=False)
        self.check()

    @property
    def hidden_size(self) -> int:
        return self.model.embed_dim

    @property
    def num_patches(self) -> int:
        return self.model.patch_embed.num_patches

    @property
    def has_cls_token(self) -> bool:
        return getattr(self.model, "cls_token", None) is not None

    @property
    def image_mean(self) -> tuple[float, float, float]:
        return tuple(self.data_config["mean"])


    def layer_tokens(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        patches, prefix = self.model.forward_intermediates(
            pixel_values, indices=[self.block_index(len(self.model.blocks))], return_prefix_tokens=True,
            output_fmt="NLC", intermediates_only=True, stop_early=True,
        )[0]
        cls = prefix[:, :1] if self.has_cls_token else None
        return cls, patches

    def transform(self, images: list[Image.Image]) -> torch.Tensor:
        return torch.stack([self._transform(img) for img in images])

    def save_preprocessing(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / PREPROCESSING_FILE).write_text(json.dumps(self.data_config, indent=2))
