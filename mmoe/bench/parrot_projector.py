"""``parrot_projector``: Parrot's prompt-conditioned MoE projector (6 SwiGLU experts, soft routing,
prompt cross-attention) against the plain ``mlp2x_gelu`` projector it extends, forward + backward."""

from __future__ import annotations

import torch
from torch import nn

from mmoe.bench.settings import BenchSettings
from mmoe.bench.timing import compare

SIZES = {
    "tiny": {"images": 2, "image_tokens": 16, "prompt_tokens": 8, "vision_width": 32, "width": 64, "experts": 6},
    "cpu": {"images": 8, "image_tokens": 144, "prompt_tokens": 32, "vision_width": 256, "width": 512, "experts": 6},
    "full": {"images": 16, "image_tokens": 576, "prompt_tokens": 64, "vision_width": 1024, "width": 2048, "experts": 6},
}


def _projector(p: dict, settings: BenchSettings, moe: dict | None) -> nn.Module:
    from mmoe.config.schema import ProjectorConfig
    from mmoe.model.projector import build_projector

    cfg = ProjectorConfig(type="mlp2x_gelu", moe=moe)
    return build_projector(cfg, p["vision_width"], p["width"]).to(device=settings.device, dtype=settings.dtype)


def run(settings: BenchSettings) -> dict:
    from mmoe.moe.methods.parrot import PromptContext

    p = settings.pick(SIZES)
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device=settings.device, dtype=settings.dtype)

    features = tensor(p["images"], p["image_tokens"], p["vision_width"]).requires_grad_(True)
    prompt = PromptContext(
        tensor(p["images"], p["prompt_tokens"], p["width"]),
        torch.ones(p["images"], p["prompt_tokens"], dtype=torch.long, device=settings.device),
        torch.arange(p["images"], device=settings.device),
    )
    projectors = {
        "mlp_projector": _projector(p, settings, None),
        "parrot": _projector(p, settings, {"num_experts": p["experts"]}),
        "parrot_loop": _projector(p, settings, {"num_experts": p["experts"], "dispatch": "loop"}),
        "parrot_top2": _projector(p, settings, {"num_experts": p["experts"], "top_k": 2}),
    }

    def step(module: nn.Module):
        def call() -> None:
            module.zero_grad(set_to_none=True)
            features.grad = None
            module(features, prompt).float().sum().backward()

        return call

    ratios = {f"{name}/mlp_projector": (name, "mlp_projector") for name in ("parrot", "parrot_loop", "parrot_top2")}
    ratios["parrot_loop/parrot"] = ("parrot_loop", "parrot")
    return {"params": p, **compare({name: step(m) for name, m in projectors.items()}, ratios, settings)}
