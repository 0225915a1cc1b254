"""Measure FactorLLM's inference speed-up on this machine: a dense SwiGLU FFN against its k-of-E split.

``python -m mmoe.moe.factorllm_speed --hidden 2048 --intermediate 5632 --experts 8 --top-k 2 --tokens 512``
times the forward of the dense FFN and of the FactorLLM layer built from it (router included, eval
mode, no grad, ``--dispatch fast|loop``) and prints the medians and their ratio as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from mmoe.moe.config import MoEConfig
from mmoe.moe.integration.build import build_block


class DenseFFN(nn.Module):
    """``down(silu(gate x) * up x)``, the dense FFN of Llama-style LLMs."""

    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def _median_seconds(fn, x: torch.Tensor, repeats: int) -> float:
    fn(x)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


@torch.no_grad()
def measure(
    *, hidden: int, intermediate: int, experts: int, top_k: int, tokens: int, dispatch: str = "fast", repeats: int = 10, seed: int = 0,
) -> dict:
    """Median forward seconds of the dense FFN and of its FactorLLM split, and the speed-up."""
    torch.manual_seed(seed)
    dense = DenseFFN(hidden, intermediate).eval()
    cfg = MoEConfig.model_validate({
        "experts": {"type": "ffn", "num_experts": experts, "ffn": {"init": "split"}},
        "router": {"type": "top_k", "top_k": top_k},
        "factorllm": {},
        "dispatch": dispatch,
    })
    block = build_block(dense, cfg).eval()
    x = torch.randn(1, tokens, hidden)
    dense_s = _median_seconds(dense, x, repeats)
    split_s = _median_seconds(block, x, repeats)
    return {
        "hidden": hidden, "intermediate": intermediate, "experts": experts, "top_k": top_k, "tokens": tokens,
        "dispatch": dispatch, "threads": torch.get_num_threads(), "dense_ms": 1e3 * dense_s, "factorllm_ms": 1e3 * split_s, "speedup": dense_s / split_s,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--intermediate", type=int, default=5632)
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--top-k", type=int, default=2)
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--dispatch", choices=["fast", "loop"], default="fast")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)
    print(json.dumps(measure(
        hidden=args.hidden, intermediate=args.intermediate, experts=args.experts, top_k=args.top_k, tokens=args.tokens,
        dispatch=args.dispatch, repeats=args.repeats,
    )))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
