"""Helpers for the expert-layer tests: tiny recipes and small multimodal training batches."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from mmoe.config import load_config
from mmoe.config.schema import MMoEConfig
from mmoe.model.build import build_model
from mmoe.model.joint import MMoEModel
from mmoe.model.processor import MMoEProcessor
from mmoe.tokenization.templates import Turn

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

SAMPLES = [
    ("<image>\nWhat colour is this?", "Red.", (220, 20, 20)),
    ("<image>\nDescribe the picture.", "A blue square.", (20, 20, 220)),
    ("Say hello in French.", "Bonjour.", None),
    ("<image>\nIs it green?", "Yes, it is green.", (20, 200, 20)),
]


def recipe(name: str, *overrides: str) -> MMoEConfig:
    return load_config(CONFIGS / f"{name}.yaml", list(overrides))


def tiny_model(name: str, *overrides: str) -> MMoEModel:
    return build_model(recipe(name, *overrides))


def make_batch(model: MMoEModel, samples=SAMPLES, extra_pad: int = 0) -> dict[str, torch.Tensor]:
    """Right-padded training batch (labels -100 on padding); ``extra_pad`` adds pad columns."""
    processor = MMoEProcessor.from_model(model)
    encoded, images = [], []
    for question, answer, color in samples:
        encoded.append(processor.encode([Turn("user", question), Turn("assistant", answer)]))
        if color is not None:
            images.append(Image.new("RGB", (32, 32), color))
    return processor.pad(encoded, images, extra=extra_pad)
