"""Build the DeepSpeed engine: our AdamW groups and schedule, the JSON config with its ``auto`` values filled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

from mmoe.config.errors import ConfigError
from mmoe.train.config import TrainConfig

DEFAULT_DEEPSPEED = Path(__file__).resolve().parents[2] / "configs" / "deepspeed" / "zero2.json"


def use_bf16(cfg: TrainConfig) -> bool:
    return cfg.precision == "bf16" or (cfg.precision == "auto" and torch.cuda.is_available())


def deepspeed_config(cfg: TrainConfig, world_size: int) -> dict[str, Any]:
    """Read the DeepSpeed JSON and fill every ``"auto"`` from the recipe (the HF convention)."""
    path = Path(cfg.deepspeed) if cfg.deepspeed else DEFAULT_DEEPSPEED
    if not path.is_file():
        raise ConfigError(f"train.deepspeed: file not found: {path}")
    try:
        ds = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"train.deepspeed: {path} is not valid JSON ({exc})") from exc
    filled = {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "gradient_clipping": cfg.max_grad_norm or 0.0,
    }
    for key, value in filled.items():
        if ds.get(key, "auto") == "auto":
            ds[key] = value
    ds["train_batch_size"] = cfg.micro_batch_size * cfg.gradient_accumulation_steps * world_size
    ds.setdefault("bf16", {})["enabled"] = use_bf16(cfg)
    ds.pop("fp16", None)
    ds["zero_allow_untested_optimizer"] = True
    ds.setdefault("steps_per_print", 10**9)
    return ds


def build_engine(model: torch.nn.Module, cfg: TrainConfig, groups: list[dict], world_size: int):
    """Wrap the model with DeepSpeed; the optimizer is torch AdamW so each group keeps its own lr."""
    import deepspeed

    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * cfg.max_steps)
    if cfg.schedule == "cosine":
        scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, cfg.max_steps)
    else:
        scheduler = get_constant_schedule_with_warmup(optimizer, warmup)
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=deepspeed_config(cfg, world_size)
    )
    return engine, optimizer, scheduler
