"""The interface every vision backend implements, and the shared token selection."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from mmoe.config.errors import ConfigError
from mmoe.config.schema import VisionConfig
from mmoe.images import to_rgb
from mmoe.model.vision.preprocess import expand_to_square


class VisionTower(nn.Module):
    """Images in, a sequence of feature tokens per image out (``[N, T, hidden_size]``).

    Subclasses own the backbone and its preprocessing; this class applies the LLaVA options:
    which hidden layer to read and whether to keep the CLS token.
    """

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg

    @property
    @abstractmethod
    def hidden_size(self) -> int: ...

    @property
    @abstractmethod
    def num_patches(self) -> int:
        """Patch tokens per image (without CLS/register tokens)."""

    @property
    @abstractmethod
    def has_cls_token(self) -> bool: ...

    @property
    @abstractmethod
    def image_mean(self) -> tuple[float, float, float]: ...

    @abstractmethod
    def layer_tokens(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(CLS token ``[N,1,D]`` or None, patch tokens ``[N,P,D]``) from the selected hidden layer."""

    @abstractmethod
    def transform(self, images: list[Image.Image]) -> torch.Tensor:
        """Backend preprocessing (resize, crop, normalise) of RGB images to ``[N,3,H,W]``."""

    @abstractmethod
    def save_preprocessing(self, directory: Path) -> None:
        """Write the files that rebuild this tower's preprocessing."""

    def block_index(self, depth: int) -> int:
        """Map ``select_layer`` (HF ``hidden_states`` indexing: 0 = embeddings, -1 = last block) to a block index."""
        layer = self.cfg.select_layer
        index = depth + layer if layer < 0 else layer - 1
        if not 0 <= index < depth:
            raise ConfigError(f"vision.select_layer={layer} is out of range for a {depth}-block {self.cfg.backend} model")
        return index

    @property
    def num_tokens(self) -> int:
        """Visual tokens per image after feature selection."""
        return self.num_patches + (1 if self.cfg.select_feature == "cls_patch" else 0)

    @property
    def keeps_cls(self) -> bool:
        return self.cfg.select_feature == "cls_patch"

    def check(self) -> None:
        if self.keeps_cls and not self.has_cls_token:
            raise ConfigError(
                f"vision.select_feature=cls_patch but the {self.cfg.backend} model {self.cfg.name or '(from config)'} "
                "has no CLS token; use select_feature=patch"
            )

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """RGB conversion as everywhere (``mmoe.images.to_rgb``), LLaVA pad-to-square (if configured), then
        the backend's transform."""
        rgb = [to_rgb(img) for img in images]
        if self.cfg.image_aspect_ratio == "pad":
            fill = tuple(int(m * 255) for m in self.image_mean)
            rgb = [expand_to_square(img, fill) for img in rgb]
        return self.transform(rgb)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        dtype = next(self.parameters()).dtype
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.cfg.frozen):
            cls, patches = self.layer_tokens(pixel_values.to(dtype))
        if self.keeps_cls:
            return torch.cat([cls, patches], dim=1)
        return patches
