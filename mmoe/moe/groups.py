"""MoMa modality groups: experts partitioned by modality; a token only reaches its own group.

Routing is hierarchical: a fixed split by modality id (from the splice, never guessed), then each
group's own router picks experts inside the group. A group whose modality is absent from the batch
still runs on zero tokens, so its parameters are used every step (ZeRO-3).
"""

from __future__ import annotations

import torch
from torch import nn

from mmoe.moe.routers import TokenInfo

MODALITY_IDS = {"text": 0, "image": 1}


class ModalityGroups(nn.Module):
    def __init__(self, groups: dict[str, nn.Module]) -> None:
        super().__init__()
        unknown = sorted(set(groups) - set(MODALITY_IDS))
        if unknown:
            raise ValueError(f"unknown modality group(s) {unknown}; known: {sorted(MODALITY_IDS)}")
        self.groups = nn.ModuleDict(groups)

    def forward(self, x: torch.Tensor, tokens: TokenInfo | None = None, base: nn.Module | None = None):
        """``(y, {group: (router output, real experts)})`` for flat tokens ``x``; no modality ids: all text."""
        modality = tokens.modality if tokens is not None else None
        if modality is None:
            modality = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        y = None
        records = {}
        covered = 0
        for name, layer in self.groups.items():
            index = (modality == MODALITY_IDS[name]).nonzero().squeeze(1)
            out, routed = layer(x[index], base, tokens.select(index) if tokens is not None else None)
            y = (y if y is not None else out.new_zeros(x.shape[0], out.shape[-1])).index_copy(0, index, out)
            records[name] = (routed, layer.num_experts, tokens.select(index) if tokens is not None else None)
            covered += index.numel()
        if covered != x.shape[0]:
            have = {MODALITY_IDS[name] for name in self.groups}
            missing = sorted(set(modality.unique().tolist()) - have)
            names = [n for n, i in MODALITY_IDS.items() if i in missing] or missing
            raise ValueError(
                f"tokens of modality {names} reached an MoE layer whose groups are {list(self.groups)}; "
                "configure an expert group for every modality in the batch"
            )
        return y, records
