"""The DynMoLE / Mixture of Routers / GW-MoE recipes train on CPU and write their quantities to
metrics.jsonl (each at the recipe's own lr, 3e-3; loss drops asserted at about half of those measured);
the methods compose with MoMa groups; combinations that make no sense are config errors."""

from __future__ import annotations

import json

import pytest
import torch

from mmoe.config import load_config
from mmoe.config.errors import ConfigError
from mmoe.moe.core.routers import RouterOutput, RoutingPlan
from mmoe.moe.core.stats import RouterStats, merge_stats
from mmoe.train.loop import train
from tests.conftest import CONFIGS
from tests.moe.helpers import make_batch, tiny_model
from tests.train.toydata import toy_factory

QUIET = ["train.progress=false", "train.report_to=[]", "train.resume=none", "train.micro_batch_size=4", "train.log_every=1"]
LAYER = "llm.model.layers.0.mlp"


def run(recipe: str, tmp_path, *overrides: str) -> list[dict]:
    cfg = load_config(CONFIGS / "methods" / recipe, [*QUIET, f"train.output_dir={tmp_path}", *overrides])
    train(cfg, toy_factory)
    return [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]


def drop(values: list[float]) -> float:
    """Mean of the first three values minus the mean of the last three."""
    return (sum(values[:3]) - sum(values[-3:])) / 3


@pytest.mark.slow
def test_dynmole_recipe_trains_and_its_entropy_loss_lowers_the_router_entropy(tmp_path):
    on = run("dynmole.yaml", tmp_path / "on", "train.max_steps=8")  # the recipe's entropy loss, 0.01
    off = run("dynmole.yaml", tmp_path / "off", "train.max_steps=8", "model.moe.losses.entropy.coef=0.0")
    assert drop([r["lm_loss"] for r in on]) > 0.25, [r["lm_loss"] for r in on]
    entropy = [r["router"][LAYER]["dynmole_entropy"] for r in on]
    assert entropy[-1] < entropy[0] - 0.03, entropy  # measured 0.933 -> 0.875 (off: 0.933 -> 0.920)
    assert entropy[-1] < off[-1]["router"][LAYER]["dynmole_entropy"] - 0.02
    assert "aux/moe_entropy" in on[0] and "aux/moe_entropy" not in off[0]
    last = on[-1]["router"][LAYER]
    assert 2.0 <= last["experts_per_token"] <= 6.0 and 0.0 <= last["dynmole_broadcast"] <= 1.0


@pytest.mark.slow
def test_mor_recipe_trains_and_reports_its_main_router_entropy(tmp_path):
    rows = run("mor.yaml", tmp_path, "train.max_steps=6")
    assert drop([r["lm_loss"] for r in rows]) > 0.12, [r["lm_loss"] for r in rows]  # measured 0.28
    stats = rows[-1]["router"][LAYER]
    assert 0.0 < stats["mor_main_entropy"] <= 1.0
    assert rows[-1]["aux/mor_router_balance"] > 0


@pytest.mark.slow
def test_gwmoe_recipe_trains_and_reports_its_broadcast_fraction(tmp_path):
    rows = run("gwmoe.yaml", tmp_path, "train.max_steps=6")
    assert drop([r["lm_loss"] for r in rows]) > 0.6, [r["lm_loss"] for r in rows]  # measured 1.27
    for r in rows:
        stats = r["router"][LAYER]
        # at most 8 broadcast tokens per sequence, 4 sequences per batch
        assert 0.0 < stats["gw_broadcast"] <= 32 / stats["num_tokens"] + 1e-6, stats


def test_gw_model_routes_as_plain_top_k_in_eval_and_broadcasts_in_training():
    with_gw = tiny_model("methods/gwmoe")
    plain = tiny_model("methods/gwmoe", "model.moe.router.gw=null")
    batch = make_batch(with_gw)
    with torch.no_grad():
        assert torch.equal(with_gw.eval()(**batch).logits, plain.eval()(**batch).logits)
        broadcast = with_gw.train()(**batch)
        assert not torch.allclose(broadcast.logits, plain.train()(**batch).logits, atol=1e-4)
    assert broadcast.router_stats[LAYER]["gw_broadcast"] > 0


@pytest.mark.parametrize("recipe, key", [("dynmole", "dynmole_entropy"), ("gwmoe", "gw_broadcast")])
def test_routing_methods_on_lora_experts_inside_moma_groups(recipe, key):
    overrides = ["model.moe.groups={text: 2, image: 2}", "model.moe.experts.num_experts=null", "model.moe.router.dynmole.keep_top_k=1"]
    if recipe == "gwmoe":
        overrides = [*overrides[:2], "model.moe.experts={type: lora, lora: {rank: 4, alpha: 8}}", "model.llm.frozen=true"]
    model = tiny_model(f"methods/{recipe}", *overrides).train()
    out = model(**make_batch(model))
    out.loss.backward()
    stats = out.router_stats[LAYER]
    assert f"text/{key}" in stats and f"image/{key}" in stats
    assert len(stats["text/tokens_per_expert"]) == 2 and stats["image/num_tokens"] > 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.moe.router.gw={threshold: 0.5}"], "DynMoLE already sends high-entropy tokens"),
        (["model.moe.experts.num_null_experts=2"], "null experts"),
        (["model.moe.losses.entropy.index=1.4"], "same entropy that decides its routing"),
        (["model.moe.router.dynmole.keep_top_k=7"], "exceeds the 6 experts"),
        (["model.moe.router.score=sigmoid"], "set score=softmax"),
        (["model.moe.router.type=top_k", "model.moe.router.dynmole.top_p=0.5"], "moe.router.dynmole is set but moe.router.type=top_k"),
    ],
)
def test_dynmole_combinations_that_make_no_sense_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "methods" / "dynmole.yaml", overrides)


@pytest.mark.parametrize(
    "recipe, overrides, message",
    [
        ("gwmoe.yaml", ["model.moe.router.type=expert_choice"], "no per-token top-k"),
        ("gwmoe.yaml", ["model.moe.router.type=soft"], "already sends every token"),
        ("gwmoe.yaml", ["model.moe.router.gw.threshold=1.5"], "normalised entropy never exceeds 1"),
        ("gwmoe.yaml", ["model.moe.router.gw={threshold: 1.5, normalized: false}"], "exceeds ln\\(4\\)"),
        ("mor.yaml", ["model.moe.losses.z_loss=0.001"], "z-loss would be 0"),
        ("mor.yaml", ["model.moe.router.top_k=5"], "exceeds the 4 experts"),
    ],
)
def test_gw_and_mor_combinations_that_make_no_sense_are_config_errors(recipe, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "methods" / recipe, overrides)


def test_router_statistics_report_extras_as_per_token_means_over_forwards():
    stats = RouterStats()
    for flags in ([1.0, 0.0, 0.0, 0.0], [1.0, 1.0]):
        scores = torch.full((len(flags), 2), 0.5)
        plan = RoutingPlan.from_mask(torch.ones_like(scores, dtype=torch.bool), scores)
        stats.add(RouterOutput(scores.log(), scores, plan, extras={"gw_broadcast_sum": torch.tensor(flags)}), 2)
    out = stats.pop()
    assert out["gw_broadcast"].item() == pytest.approx(3 / 6) and out["num_tokens"].item() == 6
