"""Router Lens in training: after the router-only phase, count expert activations on the probe set
(the training data, each sample once, model in eval mode) and write the selection file."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch

from mmoe.data.collate import model_inputs
from mmoe.moe.core.layer import MoEBlock
from mmoe.moe.methods.router_lens import ExpertSelection, GroupSelection, select_experts
from mmoe.train.method_configs import RouterLensConfig


@torch.no_grad()
def activation_counts(model, batches: Iterable[dict]) -> dict[str, dict[str, torch.Tensor]]:
    """Router statistics of every MoE block summed over ``batches``."""
    was_training = model.training
    model.eval()
    totals: dict[str, dict[str, torch.Tensor]] = {}
    try:
        for batch in batches:
            for block, stats in model(**model_inputs(batch)).router_stats.items():
                mine = totals.setdefault(block, {})
                for key, value in stats.items():
                    mine[key] = mine[key] + value.cpu() if key in mine else value.cpu()
    finally:
        model.train(was_training)
    return totals


def lens_selection(cfg: RouterLensConfig, model, counts: dict[str, dict[str, torch.Tensor]]) -> ExpertSelection:
    """Per MoE block and expert group: the ``cfg.top_experts`` experts the counted tokens activated most."""
    blocks: dict[str, dict[str, GroupSelection]] = {}
    for name, block in ((n, m) for n, m in model.named_modules() if isinstance(m, MoEBlock)):
        stats = counts.get(name, {})
        groups = {}
        for group, layer in block.core.expert_layers().items():
            num = layer.experts.num_experts
            key = cfg.statistic(group)
            if key is None:
                groups[group] = GroupSelection(num_experts=num, counts=[0.0] * num, experts=[])
                continue
            full = key if group == "-" else f"{group}/{key}"
            if full not in stats:
                raise ValueError(f"router_lens: no counted token reached block {name} under statistic {full!r} (probe set lacks them?)")
            real = stats[full][:num].tolist()
            groups[group] = GroupSelection(num_experts=num, counts=real, experts=select_experts(real, cfg.top_experts))
        blocks[name] = groups
    statistic = cfg.statistic(cfg.modality or "-") or "tokens_per_expert"
    return ExpertSelection(property=cfg.property, statistic=statistic, top_experts=cfg.top_experts, blocks=blocks)


def write_lens_selection(cfg: RouterLensConfig, model, batches: Iterable[dict], output_dir: Path, rank: int) -> Path:
    """Count and select on every rank (the same result); rank 0 writes ``cfg.output`` (relative to ``output_dir``)."""
    path = Path(cfg.output)
    path = path if path.is_absolute() else output_dir / path
    selection = lens_selection(cfg, model, activation_counts(model, batches))
    if rank == 0:
        selection.write(path)
    return path
