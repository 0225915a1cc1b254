"""A readable summary of an assembled model."""

from __future__ import annotations

from torch import nn

from mmoe.model.joint import MMoEModel
from mmoe.model.parts import group_sizes
from mmoe.train.config import GROUPS
from mmoe.moe.cost import format_costs, moe_costs


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters) of ``module``."""
    total = trainable = 0
    for p in module.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def _fmt(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _parrot(moe) -> str:
    state = "bypassed" if moe.bypass else f"residual {moe.residual}, alpha {moe.alpha}"
    return f" + Parrot MoE ({moe.num_experts} {moe.expert} experts, {state})"


def describe(model: MMoEModel) -> str:
    cfg = model.config.model
    rows = [("vision tower", model.vision_tower), ("projector", model.projector), ("llm", model.llm)]
    lines = [f"{'part':<14}{'params':>10}{'trainable':>11}{'frozen':>10}  dtype"]
    total = trainable = 0
    for name, module in rows:
        n, t = count_parameters(module)
        total, trainable = total + n, trainable + t
        dtype = str(next(module.parameters()).dtype).replace("torch.", "") if n else "-"
        lines.append(f"{name:<14}{_fmt(n):>10}{_fmt(t):>11}{_fmt(n - t):>10}  {dtype}")
    lines.append(f"{'total':<14}{_fmt(total):>10}{_fmt(trainable):>11}{_fmt(total - trainable):>10}")
    vision_name = cfg.vision.name or f"{cfg.vision.config.get('model_type', 'from config') if cfg.vision.config else ''}"
    llm_name = cfg.llm.name or f"{cfg.llm.config['model_type']} (from config)"
    lines += [
        "",
        f"vision: {cfg.vision.backend} {vision_name}, layer {cfg.vision.select_layer}, {cfg.vision.select_feature}",
        f"visual tokens per image: {model.tokens_per_image} (width {model.vision_tower.hidden_size})",
        f"projector: {cfg.projector.type}" + (_parrot(cfg.projector.moe) if cfg.projector.moe else ""),
        f"llm: {llm_name}, {model.llm.config.num_hidden_layers} layers, width {model.llm.config.hidden_size}",
        f"tokenizer: {len(model.tokenizer)} tokens, chat template {cfg.tokenizer.chat_template}",
    ]
    sizes = group_sizes(model)
    lines += ["", "parameter groups: " + ", ".join(f"{group} {_fmt(sizes[group])}" for group in GROUPS if group in sizes)]
    costs = format_costs(moe_costs(model))
    if costs:
        lines += [""] + costs
    return "\n".join(lines)
