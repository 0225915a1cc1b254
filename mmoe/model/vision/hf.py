"""Hugging Face CLIP and SigLIP vision models."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    PretrainedConfig,
    SiglipImageProcessor,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from mmoe.config.errors import ConfigError
from mmoe.config.schema import VisionConfig
from mmoe.model.vision.base import VisionTower

# model_type (of a full or a vision-only config) -> (vision config class, vision model class, has CLS)
_FAMILIES = {
    "clip": (CLIPVisionConfig, CLIPVisionModel, True),
    "clip_vision_model": (CLIPVisionConfig, CLIPVisionModel, True),
    "siglip": (SiglipVisionConfig, SiglipVisionModel, False),
    "siglip_vision_model": (SiglipVisionConfig, SiglipVisionModel, False),
}


def _family(model_type: str, where: str) -> tuple[type, type, bool]:
    if model_type not in _FAMILIES:
        supported = ", ".join(sorted(_FAMILIES))
        raise ConfigError(f"vision backend hf: unsupported model_type {model_type!r} in {where}; supported: {supported}")
    return _FAMILIES[model_type]


def _default_processor(config: PretrainedConfig, siglip: bool):
    size = config.image_size
    mean, std = ([0.5] * 3, [0.5] * 3) if siglip else (CLIPImageProcessor().image_mean, CLIPImageProcessor().image_std)
    if siglip:
        return SiglipImageProcessor(size={"height": size, "width": size}, image_mean=mean, image_std=std)
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}, image_mean=mean, image_std=std)


class HFVisionTower(VisionTower):
    def __init__(self, cfg: VisionConfig, preprocessing_dir: Path | None = None) -> None:
        super().__init__(cfg)
        if cfg.config is not None:
            raw = dict(cfg.config)
            model_type = raw.pop("model_type", "clip_vision_model")
            config_cls, model_cls, self._has_cls = _family(model_type, "vision.config")
            self.model = model_cls(config_cls(**raw))
            processor = _default_processor(self.model.config, siglip=not self._has_cls)
        else:
            full = AutoConfig.from_pretrained(cfg.name, trust_remote_code=False)
            config_cls, model_cls, self._has_cls = _family(full.model_type, cfg.name)
            self.model = model_cls.from_pretrained(cfg.name, trust_remote_code=False)
            processor = AutoImageProcessor.from_pretrained(cfg.name) if preprocessing_dir is None else None
        if preprocessing_dir is not None:
            processor = AutoImageProcessor.from_pretrained(preprocessing_dir)
        self.processor = processor
        self.check()

    @classmethod
    def from_module(cls, cfg: VisionConfig, model: torch.nn.Module, processor) -> "HFVisionTower":
        """Wrap an already-built HF vision model (used when importing an HF LLaVA checkpoint)."""
        tower = cls.__new__(cls)
        VisionTower.__init__(tower, cfg)
        _, _, tower._has_cls = _family(model.config.model_type, "the imported checkpoint")
        tower.model = model
        tower.processor = processor
        tower.check()
        return tower

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def num_patches(self) -> int:
        return (self.model.config.image_size // self.model.config.patch_size) ** 2

    @property
    def has_cls_token(self) -> bool:
        return self._has_cls

    @property
    def image_mean(self) -> tuple[float, float, float]:
        return tuple(self.processor.image_mean)

    def layer_tokens(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        out = self.model(pixel_values=pixel_values, output_hidden_states=True)
        hidden = out.hidden_states[self.cfg.select_layer]
        if self._has_cls:
            return hidden[:, :1], hidden[:, 1:]
        return None, hidden

    def transform(self, images: list[Image.Image]) -> torch.Tensor:
        return self.processor(images=images, return_tensors="pt")["pixel_values"]

    def save_preprocessing(self, directory: Path) -> None:
        self.processor.save_pretrained(directory)
