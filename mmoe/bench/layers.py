"""Shared pieces of the layer cases: a frozen gated MLP, inputs, and one forward + backward call."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from mmoe.bench.settings import BenchSettings


def gated_mlp(dim: int, intermediate: int, settings: BenchSettings, *, frozen: bool) -> nn.Module:
    """A Hugging Face Qwen2 SwiGLU MLP (gate/up/down) on the run's device and dtype."""
    from transformers import Qwen2Config
    from transformers.models.qwen2.modeling_qwen2 import Qwen2MLP

    mlp = Qwen2MLP(Qwen2Config(hidden_size=dim, intermediate_size=intermediate, hidden_act="silu"))
    mlp.to(device=settings.device, dtype=settings.dtype)
    mlp.requires_grad_(not frozen)
    return mlp


def inputs(tokens: int, dim: int, settings: BenchSettings, seed: int = 0) -> torch.Tensor:
    """Activations entering the layer; they need a gradient, as inside a network."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, dim, generator=generator).to(device=settings.device, dtype=settings.dtype)
    return x.requires_grad_(True)


def fwd_bwd(module: nn.Module, call: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``call(x)`` with fresh gradients (the timed unit of a layer case)."""

    def step() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        call(x).float().sum().backward()

    return step
