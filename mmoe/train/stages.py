"""Stages: classify every parameter into a group, freeze what a stage does not train, build optimizer groups.

Groups: ``vision`` (the tower), ``projector`` (the MLP projector), ``moe_projector`` (Parrot's experts and
router), ``llm`` (the base LLM), ``experts`` (expert weights injected into the LLM: LoRA or FFN experts),
``routers`` (router weights injected into the LLM), ``aux_routers`` (MoMa's causal auxiliary routers,
trained in their own phase with BCE against the expert-choice assignments). Plain LoRA adapters on attention count as ``experts``:
they are the adapter weights trained beside the experts. Parrot's stage-1 bypass is ``model.projector.moe.bypass``.
"""

from __future__ import annotations

from torch import nn

from mmoe.train.config import StageConfig, TrainConfig


def param_group(name: str) -> str:
    """The stage group of a parameter, from its dotted name in the MMoEModel."""
    parts = name.split(".")
    if parts[0] == "vision_tower":
        return "vision"
    if parts[0] == "projector":
        return "moe_projector" if parts[1] in ("router", "experts") else "projector"
    if "aux_router" in parts:
        return "aux_routers"
    if any("router" in p for p in parts):
        return "routers"
    if any(p.startswith("expert") or p.startswith("lora") for p in parts):
        return "experts"
    return "llm"


def apply_stage(model: nn.Module, stage: StageConfig) -> dict[str, list[str]]:
    """Set ``requires_grad`` per the stage; return the trainable parameter names per group."""
    trainable: dict[str, list[str]] = {}
    for name, param in model.named_parameters():
        group = param_group(name)
        param.requires_grad_(group in stage.trainable)
        if param.requires_grad:
            trainable.setdefault(group, []).append(name)
    missing = [g for g in stage.trainable if g not in trainable]
    if missing:
        from mmoe.config.errors import ConfigError

        raise ConfigError(f"stage {stage.name!r} trains {missing}, but the model has no such parameters")
    return trainable


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
