"""Joint models and batches at a bench size: the shipped tiny recipes with their widths scaled."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from mmoe.bench.settings import BenchSettings

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# per size: LLM and vision widths, and the batch (samples, answer characters ~ tokens of the byte tokenizer)
SIZES = {
    "tiny": {"hidden": 64, "intermediate": 128, "layers": 2, "heads": 4, "kv_heads": 2, "image": 32, "vision": 32,
             "samples": 2, "text_chars": 24, "experts": 8, "rank": 4},
    "cpu": {"hidden": 384, "intermediate": 1024, "layers": 4, "heads": 6, "kv_heads": 2, "image": 64, "vision": 128,
            "samples": 8, "text_chars": 160, "experts": 8, "rank": 16},
    "full": {"hidden": 896, "intermediate": 4864, "layers": 24, "heads": 14, "kv_heads": 2, "image": 224, "vision": 768,
             "samples": 8, "text_chars": 1800, "experts": 8, "rank": 16},
}


def overrides(p: dict, settings: BenchSettings) -> list[str]:
    """Config overrides that scale a tiny recipe to the bench size (Qwen2-0.5B-shaped LLM at ``full``)."""
    llm = "model.llm.config."
    vision = "model.vision.config."
    dtype = str(settings.dtype).removeprefix("torch.")
    return [
        f"{llm}hidden_size={p['hidden']}", f"{llm}intermediate_size={p['intermediate']}",
        f"{llm}num_hidden_layers={p['layers']}", f"{llm}num_attention_heads={p['heads']}",
        f"{llm}num_key_value_heads={p['kv_heads']}", f"model.llm.dtype={dtype}",
        f"{vision}hidden_size={p['vision']}", f"{vision}intermediate_size={2 * p['vision']}",
        f"{vision}image_size={p['image']}",
    ]


def build(recipe: str, p: dict, settings: BenchSettings, extra: list[str] = ()):
    """The joint model of ``configs/<recipe>.yaml`` at the bench size, on the run's device."""
    from mmoe.config import load_config
    from mmoe.model.build import build_model

    cfg = load_config(CONFIGS / f"{recipe}.yaml", overrides(p, settings) + list(extra))
    return build_model(cfg).to(device=settings.device, dtype=settings.dtype)


def mole_overrides(p: dict) -> list[str]:
    """MoLE as the issue states it: 8 LoRA experts, top-1, rank r on the MLP, plain LoRA r on attention."""
    r = p["rank"]
    return [f"model.moe.experts.num_experts={p['experts']}", f"model.moe.experts.lora.rank={r}",
            f"model.moe.experts.lora.alpha={2 * r}", f"model.moe.attention_lora.rank={r}",
            f"model.moe.attention_lora.alpha={2 * r}"]


def training_batch(model, p: dict, settings: BenchSettings, seed: int = 0) -> dict[str, torch.Tensor]:
    """``samples`` one-image conversations with answers of ``text_chars`` characters, right-padded."""
    from mmoe.model.processor import MMoEProcessor
    from mmoe.tokenization.templates import Turn

    processor = MMoEProcessor.from_model(model)
    generator = torch.Generator().manual_seed(seed)
    encoded, images = [], []
    for i in range(p["samples"]):
        letters = torch.randint(0, 26, (p["text_chars"],), generator=generator).tolist()
        answer = "".join(chr(97 + c) for c in letters)
        encoded.append(processor.encode([Turn("user", "<image>\nDescribe it."), Turn("assistant", answer)]))
        images.append(Image.new("RGB", (p["image"], p["image"]), (40 * i % 255, 90, 160)))
    batch = processor.pad(encoded, images)
    batch["pixel_values"] = batch["pixel_values"].to(settings.dtype)
    return {k: v.to(settings.device) for k, v in batch.items()}
