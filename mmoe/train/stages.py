"""Stages: freeze what a stage does not train, build optimizer groups.

Each parameter's group is declared by the module that owns it (``mmoe.model.parts``): ``vision``,
``projector``, ``moe_projector`` (Parrot), ``llm`` (the base LLM, an HF MoE LLM's own experts
included), ``experts`` (LoRA/FFN experts and dense attention LoRA), ``routers``, ``aux_routers``
(MoMa's causal aux routers, trained in their own phase). Parrot's stage-1 bypass is
``model.projector.moe.bypass``. ``stage.experts_from`` (CEFT) trains only the experts a Router Lens
selection names.
"""

from __future__ import annotations

from torch import nn

from mmoe.config.errors import ConfigError
from mmoe.model.parts import group_sizes, parameter_groups
from mmoe.moe.methods.ceft import train_selected_experts
from mmoe.moe.methods.router_lens import read_selection
from mmoe.train.config import StageConfig, TrainConfig


def apply_stage(model: nn.Module, stage: StageConfig) -> dict[str, list[str]]:
    """Set ``requires_grad`` per the stage; return the trainable parameter names per group."""
    trainable: dict[str, list[str]] = {}
    groups = parameter_groups(model)
    for name, param in model.named_parameters():
        group = groups[name]
        param.requires_grad_(group in stage.trainable)
        if param.requires_grad:
            trainable.setdefault(group, []).append(name)
    missing = [g for g in stage.trainable if g not in trainable]
    if missing:
        raise ConfigError(f"stage {stage.name!r} trains {missing}, but the model has no such parameters")
    if stage.experts_from is not None:
        source = f"train.stage.experts_from={stage.experts_from}"
        train_selected_experts(model, read_selection(stage.experts_from), source)
    return trainable


def describe_stage(model: nn.Module, stage: StageConfig, trainable: dict[str, list[str]]) -> str:
    """One line saying what this stage trains and what stays frozen, with parameter counts."""
    params = dict(model.named_parameters())
    sizes = group_sizes(model)
    trained = ", ".join(f"{g} ({sum(params[n].numel() for n in names):,})" for g, names in trainable.items())
    frozen = ", ".join(f"{g} ({n:,})" for g, n in sizes.items() if g not in trainable) or "nothing"
    return f"stage {stage.name!r} trains {trained}; frozen: {frozen}"


def optimizer_groups(model: nn.Module, cfg: TrainConfig, trainable: dict[str, list[str]]) -> list[dict]:
    """One AdamW group per stage group (its own lr); biases and norms get no weight decay."""
    params = dict(model.named_parameters())
    groups = []
    for group, names in trainable.items():
        lr = cfg.stage.lr.get(group, cfg.lr)
        decay = [params[n] for n in names if params[n].ndim >= 2]
        no_decay = [params[n] for n in names if params[n].ndim < 2]
        if decay:
            groups.append({"params": decay, "lr": lr, "weight_decay": cfg.weight_decay, "name": group})
        if no_decay:
            groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{group}.no_decay"})
    return groups
