"""Router Lens (Bai et al., "Understanding and Leveraging the Expert Specialization of Context
Faithfulness in Mixture-of-Experts LLMs", 2025): the experts a property relies on are, per MoE layer,
the ``K`` experts that a router tuned on a probe set activates most often.

``C[l, e]`` counts the tokens whose top-k experts in layer ``l`` include ``e`` (mmoe's router
statistic ``tokens_per_expert``, per language or modality group as asked); the selection of layer
``l`` is its ``K`` largest counts, ties to the lower expert id. The selection file names each MoE
block (and group) with its counts and selected experts; CEFT trains only those experts.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, ValidationError

from mmoe.config.base import StrictModel
from mmoe.config.errors import ConfigError

SELECTION_FORMAT = "mmoe.router_lens.v1"
MAX_SELECTION_BYTES = 16 * 1024 * 1024


def select_experts(counts: list[float], top_experts: int) -> list[int]:
    """The ``top_experts`` most-activated expert ids, most activated first, ties to the lower id."""
    return sorted(range(len(counts)), key=lambda e: (-counts[e], e))[:top_experts]


class GroupSelection(StrictModel):
    """One expert group of one MoE block: its activation counts and the experts selected in it."""

    num_experts: int = Field(gt=0)
    counts: list[float]
    experts: list[int]


class ExpertSelection(StrictModel):
    """The file ``train.router_lens`` writes: ``blocks[block name][group]`` (group ``-`` without
    modality groups, else ``text``/``image``)."""

    format: str = SELECTION_FORMAT
    property: str
    statistic: str
    top_experts: int = Field(gt=0)
    blocks: dict[str, dict[str, GroupSelection]]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(), indent=1))


def _check(selection: ExpertSelection, path: Path) -> None:
    if selection.format != SELECTION_FORMAT:
        raise ConfigError(f"{path}: format {selection.format!r} is not {SELECTION_FORMAT!r}")
    for block, groups in selection.blocks.items():
        for group, chosen in groups.items():
            where = f"{path}: blocks.{block}.{group}"
            if len(chosen.counts) != chosen.num_experts:
                raise ConfigError(f"{where}.counts has {len(chosen.counts)} entries for num_experts={chosen.num_experts}")
            bad = [e for e in chosen.experts if not 0 <= e < chosen.num_experts]
            if bad or len(set(chosen.experts)) != len(chosen.experts):
                raise ConfigError(f"{where}.experts must be distinct ids in [0, {chosen.num_experts}), got {chosen.experts}")


def read_selection(path: str | Path) -> ExpertSelection:
    """Read and check a selection file (size checked before decoding; errors name the file and key)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"train.stage.experts_from: no selection file at {path} (run the router_lens stage first)")
    size = path.stat().st_size
    if size > MAX_SELECTION_BYTES:
        raise ConfigError(f"{path}: {size} bytes, more than a selection file's limit of {MAX_SELECTION_BYTES}")
    try:
        selection = ExpertSelection.model_validate(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: key {key!r}: {first['msg']}") from exc
    _check(selection, path)
    return selection
