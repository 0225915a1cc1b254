"""Build the DeepSpeed engine: our AdamW groups and schedule, the JSON config with its ``auto`` values filled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

from mmoe.config.errors import ConfigError
from mmoe.configs import DEEPSPEED_PRESETS
from mmoe.train.config import TrainConfig

DEFAULT_DEEPSPEED = "zero2"


# Dynamic loss scaling (DeepSpeed's fp16 section): start at 2**16, halve on overflow, grow after 1000 clean steps.
FP16_DEFAULTS = {"loss_scale": 0, "initial_scale_power": 16, "loss_scale_window": 1000, "hysteresis": 2, "min_loss_scale": 1}


def resolve_precision(precision: str, cuda: bool, bf16_supported: bool) -> str:
    """``auto``: bf16 where the GPU has it, fp16 (with loss scaling) on GPUs without it, fp32 on CPU."""
    if precision != "auto":
        return precision
    if not cuda:
        return "fp32"
    return "bf16" if bf16_supported else "fp16"


def training_precision(cfg: TrainConfig) -> str:
    cuda = torch.cuda.is_available()
    return resolve_precision(cfg.precision, cuda, cuda and torch.cuda.is_bf16_supported())


def deepspeed_config(cfg: TrainConfig, world_size: int) -> dict[str, Any]:
    """Read the DeepSpeed JSON and fill every ``"auto"`` from the recipe (the HF convention)."""
    name = cfg.deepspeed or DEFAULT_DEEPSPEED
    path = DEEPSPEED_PRESETS.get(name) or Path(name)
    if not path.is_file():
        raise ConfigError(f"train.deepspeed: file not found: {path} (or name a preset shipped with mmoe: {', '.join(DEEPSPEED_PRESETS)})")
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
    precision = training_precision(cfg)
    ds.setdefault("bf16", {})["enabled"] = precision == "bf16"
    if precision == "fp16":
        ds["fp16"] = {**FP16_DEFAULTS, **{k: v for k, v in ds.get("fp16", {}).items() if v != "auto"}, "enabled": True}
    else:
        ds.pop("fp16", None)
    ds["zero_allow_untested_optimizer"] = True
    ds.setdefault("steps_per_print", 10**9)
    return ds


def build_engine(model: torch.nn.Module, cfg: TrainConfig, groups: list[dict], world_size: int, total_steps: int):
    """Wrap the model with DeepSpeed; the optimizer is torch AdamW so each group keeps its own lr.

    ``total_steps`` is the schedule's length (``max_steps``, or ``epochs`` converted by the loop).
    """
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    accelerator = get_accelerator()
    if training_precision(cfg) == "fp16" and not accelerator.is_fp16_supported():
        raise ConfigError(
            f"train.precision=fp16: DeepSpeed's {accelerator.device_name()} accelerator reports no fp16 support on this "
            "machine (on CPU it needs oneDNN fp16 kernels); use train.precision=bf16 or fp32"
        )
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * total_steps)
    if cfg.schedule == "cosine":
        scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
    else:
        scheduler = get_constant_schedule_with_warmup(optimizer, warmup)
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=deepspeed_config(cfg, world_size)
    )
    return engine, optimizer, scheduler
