"""``generate``: greedy decoding with the KV cache, new tokens per second, MoE LLMs (MoLE, FFN
experts) against the dense one; the routing contract (one context per LLM call) is included."""

from __future__ import annotations

import torch

from mmoe.bench import models
from mmoe.bench.settings import BenchSettings
from mmoe.bench.timing import compare, rate

NEW_TOKENS = {"tiny": 4, "cpu": 32, "full": 128}


def _prompts(model, p: dict, settings: BenchSettings) -> dict[str, torch.Tensor]:
    from PIL import Image

    from mmoe.model.processor import MMoEProcessor
    from mmoe.tokenization.templates import Turn

    processor = MMoEProcessor.from_model(model)
    rows = p["samples"]
    conversations = [[Turn("user", f"<image>\nDescribe picture {i} in detail.")] for i in range(rows)]
    images = [[Image.new("RGB", (p["image"], p["image"]), (30 * i % 255, 80, 120))] for i in range(rows)]
    batch = processor.prompts(conversations, images)
    batch["pixel_values"] = batch["pixel_values"].to(settings.dtype)
    return {k: v.to(settings.device) for k, v in batch.items()}


def run(settings: BenchSettings) -> dict:
    p = settings.pick(models.SIZES)
    new = NEW_TOKENS[settings.size]
    ffn = ["model.moe.experts.type=ffn", "model.moe.experts.num_experts=8", "model.moe.router.top_k=2",
           "model.moe.attention_lora=null"]
    built = {
        "dense": models.build("tiny", p, settings),
        "mole": models.build("mole", p, settings, models.mole_overrides(p)),
        "ffn_top2": models.build("mole", p, settings, ffn),
    }
    batch = _prompts(built["dense"], p, settings)

    def generate(model):
        model.eval()

        def call() -> None:
            with torch.no_grad():
                model.generate(**batch, max_new_tokens=new, min_new_tokens=new, do_sample=False)

        return call

    result = compare({n: generate(m) for n, m in built.items()},
                     {"mole/dense": ("mole", "dense"), "ffn_top2/dense": ("ffn_top2", "dense")}, settings)
    result["new_tokens_per_s"] = {n: rate(new * p["samples"], s) for n, s in result["variants"].items()}
    return {"params": {**p, "new_tokens": new}, **result}
