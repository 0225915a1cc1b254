"""Peak memory of one training step: CUDA allocator peak, or on CPU the bytes autograd saves for backward.

CPU has no per-process allocator peak that isolates one step (RSS is shared with everything else
the process ever allocated), so on CPU the figure is the activation memory: the distinct storages
that autograd keeps for backward during the forward (``torch.autograd.graph.saved_tensors_hooks``),
plus the trainable parameters' gradients and two AdamW moments.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def saved_bytes(forward: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Run ``forward`` and count the bytes of the distinct storages it saves for backward."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    return out, sum(seen.values())


def trainable_state_bytes(model: nn.Module) -> int:
    """Gradient plus two AdamW moments of every trainable parameter."""
    return sum(3 * p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def step_peak(model: nn.Module, loss: Callable[[], torch.Tensor], device: torch.device) -> dict[str, object]:
    """Peak memory of forward + backward of ``loss()``, with what the number means."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        loss().backward()
        torch.cuda.synchronize(device)
        return {"bytes": torch.cuda.max_memory_allocated(device) - before, "measure": "cuda max_memory_allocated minus before"}
    value, activations = saved_bytes(loss)
    value.backward()
    return {"bytes": activations + trainable_state_bytes(model), "activation_bytes": activations,
            "measure": "autograd saved-for-backward storages + trainable grads and AdamW moments"}
