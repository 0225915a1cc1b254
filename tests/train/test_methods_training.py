"""The RoMA, Router Lens and CEFT recipes train on prepared synthetic data and their quantities behave
as the papers say: RoMA's manifold term over the training set falls; CEFT changes only the experts
that the Router Lens phase selected."""

from __future__ import annotations

import json

import pytest
import torch

from mmoe.config import load_config
from mmoe.data.config import PrepConfig
from mmoe.data.prep import prepare
from mmoe.model.parts import parameter_groups
from mmoe.moe.methods.router_lens import read_selection
from mmoe.train.data import build_train_loader
from mmoe.train.loop import train
from tests.conftest import CONFIGS

QUIET = ["train.progress=false", "train.report_to=[]", "train.resume=none", "train.micro_batch_size=4", "data.num_workers=0"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    prep = PrepConfig.model_validate({
        "sources": [{"type": "synthetic", "n": 32, "seed": 3, "path": str(root / "raw")}],
        "tokenizer": {"name": "byte", "chat_template": "chatml", "tokens_per_image": 16},
        "langid": {"enabled": False},
    })
    prepare(prep, root / "prepared", progress=False)
    return root / "prepared"


def _run(name: str, prepared, out, *overrides: str) -> tuple[list[dict], dict]:
    cfg = load_config(CONFIGS / "methods" / f"{name}.yaml", [*QUIET, f"data.train=[{prepared}]", f"train.output_dir={out}", *overrides])
    box = {}

    def factory(cfg, model, rank, world):
        box["model"], box["before"] = model, {n: p.detach().clone() for n, p in model.named_parameters()}
        return build_train_loader(cfg, model, rank, world)

    train(cfg, factory)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "loss" in r], box


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.mark.slow
def test_roma_trains_routers_only_and_its_manifold_term_falls(prepared, tmp_path):
    rows, box = _run("roma", prepared, tmp_path / "roma", "train.max_steps=12", "train.micro_batch_size=8")
    assert rows[0]["roma"]["samples"] == 32 and rows[0]["roma"]["successful"] == 16  # the lower-loss half
    assert all("aux/roma_manifold" in r for r in rows)
    manifold = [r["roma"]["set_manifold"] for r in rows]
    assert manifold[-1] < 0.7 * manifold[0], manifold  # measured: 0.183 -> 0.096
    losses = [r["loss"] for r in rows]
    assert _mean(losses[-4:]) < _mean(losses[:4]), losses  # 4 steps = one epoch of the same 32 samples
    groups = parameter_groups(box["model"])
    changed = {groups[n] for n, p in box["model"].named_parameters() if not torch.equal(p.detach(), box["before"][n])}
    assert changed == {"routers"}


@pytest.mark.slow
def test_router_lens_selection_then_ceft_trains_only_the_selected_experts(prepared, tmp_path):
    _run("router_lens", prepared, tmp_path / "lens", "train.max_steps=3")
    path = tmp_path / "lens" / "router_lens.json"
    selection = read_selection(path)
    assert set(selection.blocks) == {"llm.model.layers.0.mlp", "llm.model.layers.1.mlp"}
    for groups in selection.blocks.values():
        counts = groups["-"].counts
        # every counted token activates top_k=2 experts; the selection is the 2 largest counts
        assert groups["-"].experts == sorted(range(4), key=lambda e: (-counts[e], e))[:2]
    rows, box = _run("ceft", prepared, tmp_path / "ceft", "train.max_steps=8", f"train.stage.experts_from={path}")
    losses = [r["lm_loss"] for r in rows]
    assert _mean(losses[-3:]) < _mean(losses[:3]) - 0.1, losses
    model, before = box["model"], box["before"]
    modules = dict(model.named_modules())
    for block, groups in selection.blocks.items():
        bank = modules[f"{block}.core.experts"]
        for param in bank.expert_parameters():
            name = next(n for n, p in model.named_parameters() if p is param)
            moved = (param.detach() - before[name]).flatten(1).abs().amax(1)
            assert [bool(m > 0) for m in moved] == [e in groups["-"].experts for e in range(4)], (name, moved)
    groups = parameter_groups(model)
    changed = {groups[n] for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed == {"experts"}
