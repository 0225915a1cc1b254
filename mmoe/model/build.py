"""Assemble an MMoEModel from a recipe."""

from __future__ import annotations

from pathlib import Path

import torch

from mmoe.config.schema import MMoEConfig
from mmoe.model.joint import MMoEModel
from mmoe.model.llm import build_llm
from mmoe.model.projector import build_projector
from mmoe.model.vision import build_vision_tower
from mmoe.moe.integration.inject import inject_moe
from mmoe.tokenization.tokenizer import load_tokenizer


def build_model(cfg: MMoEConfig, tokenizer_dir: Path | None = None, preprocessing_dir: Path | None = None) -> MMoEModel:
    """Build every part (seeded by ``model.seed``); the saved-directory arguments restore files on load."""
    torch.manual_seed(cfg.model.seed)
    vision = build_vision_tower(cfg.model.vision, preprocessing_dir)
    llm = build_llm(cfg.model.llm)
    if cfg.model.moe is not None:
        inject_moe(llm, cfg.model.moe)
    tokenizer = load_tokenizer(cfg.model.tokenizer, cfg.model.llm.name, tokenizer_dir)
    llm_width = llm.get_input_embeddings().embedding_dim
    projector = build_projector(cfg.model.projector, vision.hidden_size, llm_width)
    return MMoEModel(cfg, vision, projector, llm, tokenizer)
