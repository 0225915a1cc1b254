"""Every shipped recipe trains what its method needs, and those groups really change in training."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mmoe.config import load_config
from mmoe.model.build import build_model
from mmoe.model.parts import parameter_groups
from mmoe.train.stages import apply_stage, describe_stage
from mmoe.train.loop import train
from tests.conftest import CONFIGS
from tests.train.toydata import recording_factory

QUIET = ["train.progress=false", "train.report_to=[]", "train.resume=none", "train.micro_batch_size=4", "train.lr=1e-2"]

TRAINS = {
    "mole.yaml": {"projector", "experts", "routers"},
    "mole_llava15_7b.yaml": {"projector", "experts", "routers"},
    "moma.yaml": {"projector", "llm", "experts", "routers"},
    "moma_4t4i.yaml": {"projector", "llm", "experts", "routers"},
    "parrot.yaml": {"projector", "moe_projector", "llm"},
    "parrot_qwen2_7b.yaml": {"projector", "moe_projector", "llm"},
    "methods/roma.yaml": {"routers"},
    "methods/router_lens.yaml": {"routers"},
    "methods/ceft.yaml": {"experts"},
    "methods/dynmole.yaml": {"projector", "experts", "routers"},
    "methods/dynmole_qwen2_7b.yaml": {"projector", "experts", "routers"},
    "methods/gwmoe.yaml": {"projector", "llm", "experts", "routers"},
    "methods/mor.yaml": {"projector", "experts", "routers"},
    "demo/stage1.yaml": {"projector", "llm"},
    "demo/stage2.yaml": {"projector", "moe_projector", "llm"},
    "train/llava15_stage1.yaml": {"projector"},
    "train/mole_llava15_7b.yaml": {"projector", "experts", "routers"},
    "train/moma_4t4i.yaml": {"projector", "llm", "experts", "routers"},
    "train/moma_aux_routers.yaml": {"aux_routers"},
    "train/parrot_stage1.yaml": {"projector"},
    "train/parrot_stage2.yaml": {"projector", "moe_projector", "llm"},
    "methods/adamoe.yaml": {"projector", "experts", "routers"},
    "methods/factorllm.yaml": {"projector", "experts", "routers"},
    "methods/perft.yaml": {"projector", "experts", "routers"},
    "methods/perft_olmoe_1b7b.yaml": {"projector", "experts", "routers"},
    "methods/roma_olmoe_1b7b.yaml": {"routers"},
    "methods/router_lens_olmoe_1b7b.yaml": {"routers"},
    "methods/ceft_olmoe_1b7b.yaml": {"experts"},
}


def test_every_shipped_training_recipe_is_listed():
    # os.walk follows configs/'s links into the package data (Path.rglob does not before Python 3.13)
    shipped = {
        str((Path(root) / name).relative_to(CONFIGS))
        for root, _, files in os.walk(CONFIGS, followlinks=True) for name in files if name.endswith(".yaml")
    } - {"tiny.yaml"}
    assert shipped == set(TRAINS)


@pytest.mark.parametrize("recipe", sorted(TRAINS))
def test_recipe_stage_trains_the_groups_of_its_method(recipe):
    assert set(load_config(CONFIGS / recipe).train.stage.trainable) == TRAINS[recipe]


def test_training_says_what_the_stage_trains():
    model = build_model(load_config(CONFIGS / "mole.yaml"))
    stage = load_config(CONFIGS / "mole.yaml").train.stage
    line = describe_stage(model, stage, apply_stage(model, stage))
    assert line.startswith("stage 'mole' trains projector (24,832), experts (")
    assert "routers (" in line and "frozen: vision (" in line and "llm (" in line


@pytest.mark.parametrize("recipe", ["mole.yaml", "moma.yaml", "parrot.yaml", "demo/stage2.yaml"])
def test_every_trainable_group_changes_in_two_steps(recipe, tmp_path):
    """The README's ``mmoe train <recipe>`` path: the stage's groups train, everything else stays."""
    cfg = load_config(CONFIGS / recipe, QUIET + ["train.max_steps=2", "train.init_from=null", f"train.output_dir={tmp_path}"])
    box = {}
    train(cfg, recording_factory(box))
    model = box["model"]
    groups = parameter_groups(model)
    changed: dict[str, list[bool]] = {}
    for name, param in model.named_parameters():
        changed.setdefault(groups[name], []).append(not torch.equal(param.detach(), box["before"][name]))
    trained = {group for group, flags in changed.items() if any(flags)}
    assert trained == TRAINS[recipe], {g: f"{sum(f)}/{len(f)}" for g, f in changed.items()}
    for group in TRAINS[recipe] & {"routers", "moe_projector"}:
        assert all(changed[group]), (group, f"{sum(changed[group])}/{len(changed[group])} tensors changed")
