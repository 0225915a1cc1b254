"""Projectors from the vision width to the LLM width.

Every projector is called as ``projector(features, prompt, records)``: ``prompt`` carries the
prompt-token embeddings of each image's sample and ``records`` collects router statistics;
text-conditioned projectors (Parrot's MoE) read both, plain projectors ignore them.
"""

from __future__ import annotations

import torch
from torch import nn

from mmoe.config.errors import ConfigError
from mmoe.config.schema import ProjectorConfig
from mmoe.moe.core.context import RoutingRecords
from mmoe.moe.methods.parrot import ParrotProjector, PromptContext


class MLPProjector(nn.Module):
    """``linear`` (one layer) or LLaVA-1.5's ``mlp2x_gelu`` (Linear, GELU, Linear); identity when widths match."""

    def __init__(self, kind: str, vision_width: int, llm_width: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "identity":
            if vision_width != llm_width:
                raise ConfigError(f"projector.type=identity needs equal widths, got vision {vision_width} vs llm {llm_width}")
            self.layers = nn.Identity()
        elif kind == "linear":
            self.layers = nn.Sequential(nn.Linear(vision_width, llm_width))
        else:
            self.layers = nn.Sequential(nn.Linear(vision_width, llm_width), nn.GELU(), nn.Linear(llm_width, llm_width))

    def forward(self, features: torch.Tensor, prompt: PromptContext | None = None, records: RoutingRecords | None = None) -> torch.Tensor:
        return self.layers(features)


def build_projector(cfg: ProjectorConfig, vision_width: int, llm_width: int) -> nn.Module:
    """The MLP projector, followed by Parrot's prompt-conditioned MoE when ``cfg.moe`` is set."""
    mlp = MLPProjector(cfg.type, vision_width, llm_width)
    if cfg.moe is None:
        return mlp
    return ParrotProjector(mlp_layers=mlp.layers, cfg=cfg.moe, width=llm_width)
