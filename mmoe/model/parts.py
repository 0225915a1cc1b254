"""Declared parameter ownership: which training group each parameter of an ``MMoEModel`` belongs to.

Groups: ``vision`` (the tower), ``projector`` (the MLP projector), ``moe_projector`` (Parrot's router
and experts), ``llm`` (the base LLM, an HF MoE LLM's own experts and gates included), ``experts``
(expert weights mmoe adds to the LLM: LoRA or FFN experts, and dense attention LoRA), ``routers``
(routers mmoe adds), ``aux_routers`` (MoMa's causal aux routers).

A parameter's group is its top-level part's (``vision_tower`` -> vision, ``projector`` ->
projector, ``llm`` -> llm) unless a module declares otherwise: a module that owns parameters for a
group implements ``declared_groups() -> {name: group}``, where ``name`` is one of its own parameters
or a child module (everything below it). The declaration nearest to the parameter wins. Stages,
optimizer groups, saving, cost accounting and the HF export check all read this; a parameter's name
never decides its group (in the spirit of torchtune's ``adapter_params()``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import nn

from mmoe.train.config import GROUPS

TOP_LEVEL = {"vision_tower": "vision", "projector": "projector", "llm": "llm"}
MOE_GROUPS = ("moe_projector", "experts", "routers", "aux_routers")


@runtime_checkable
class DeclaresGroups(Protocol):
    def declared_groups(self) -> dict[str, str]:
        """``{own parameter or child module name: group}``."""


def _declarations(model: nn.Module) -> list[tuple[str, str, nn.Module]]:
    """``(dotted key, group, declaring module)`` in module order, parents before children."""
    found = []
    for prefix, module in model.named_modules():
        if not isinstance(module, DeclaresGroups):
            continue
        for local, group in module.declared_groups().items():
            if group not in GROUPS:
                raise ValueError(f"{type(module).__name__} declares unknown group {group!r} for {local!r}; groups: {GROUPS}")
            found.append((f"{prefix}.{local}" if prefix else local, group, module))
    return found


def _under(name: str, key: str) -> bool:
    return name == key or name.startswith(key + ".")


def parameter_groups(model: nn.Module, *, top_level: dict[str, str] = TOP_LEVEL) -> dict[str, str]:
    """``{parameter name: group}`` for every parameter of ``model`` (shared parameters once)."""
    names = [name for name, _ in model.named_parameters()]
    buffers = {name for name, _ in model.named_buffers()}
    groups: dict[str, str] = {}
    for name in names:
        part = name.split(".", 1)[0]
        if part not in top_level:
            raise ValueError(f"parameter {name!r} is outside the model's declared parts {sorted(top_level)}")
        groups[name] = top_level[part]
    for key, group, module in _declarations(model):  # nearer declarations overwrite
        matched = [n for n in names if _under(n, key)]
        if not matched and key not in buffers:
            raise ValueError(f"{type(module).__name__} declares {key!r}, which holds no parameter or buffer")
        groups.update(dict.fromkeys(matched, group))
    return groups


def buffer_groups(model: nn.Module) -> dict[str, str]:
    """``{buffer name: group}`` for the buffers a module declares as state of a group (e.g. the aux
    routers' ``trained`` flag), which trainable-only checkpoints keep with that group's parameters."""
    buffers = [name for name, _ in model.named_buffers()]
    return {name: group for key, group, _ in _declarations(model) for name in buffers if _under(name, key)}


def group_sizes(model: nn.Module) -> dict[str, int]:
    """Parameters per group (groups with none are left out)."""
    params = dict(model.named_parameters())
    sizes: dict[str, int] = {}
    for name, group in parameter_groups(model).items():
        sizes[group] = sizes.get(group, 0) + params[name].numel()
    return sizes


def has_experts(model: nn.Module) -> bool:
    """True when mmoe added experts or routers anywhere (LLM or Parrot projector)."""
    return any(group in MOE_GROUPS for group in parameter_groups(model).values())
