"""Smaller expert-layer facts: Parrot's statistics, its init, cost as dispatched, aux-loss reduction."""

from __future__ import annotations

import pytest
import torch

from mmoe.moe.cost import moe_costs
from tests.moe.helpers import SAMPLES, make_batch, tiny_model


def test_parrot_statistics_count_real_images_only():
    model = tiny_model("parrot").train()
    text_only = [s for s in SAMPLES if s[2] is None] * 2
    assert "projector" not in model(**make_batch(model, text_only)).router_stats  # the blank image is not counted
    stats = model(**make_batch(model)).router_stats["projector"]
    assert int(stats["num_tokens"]) == sum(s[2] is not None for s in SAMPLES)  # one routing per image


def test_parrot_init_std_is_used():
    weights = tiny_model("parrot", "model.projector.moe.init_std=0.5").projector.experts.up_proj
    assert 0.45 < float(weights.std()) < 0.55
    default = tiny_model("parrot").projector.experts.up_proj  # nn.Linear's default, as the released code
    assert float(default.std()) < 0.2


@pytest.mark.parametrize("dispatch,computed_experts", [("wide", 4), ("sparse", 1), ("fast", 1), ("loop", 1)])
def test_lora_flops_count_what_the_dispatch_computes(dispatch, computed_experts):
    model = tiny_model("mole", f"model.moe.dispatch={dispatch}")
    row = moe_costs(model)[0]
    bank = model.moe_blocks()[0].core.experts
    base = sum(p.numel() for p in model.moe_blocks()[0].base.parameters())
    router = row.router_params
    assert row.active_params == base + router + 1 * bank.params_per_expert  # top-1 touches one expert
    assert row.computed_params == base + router + computed_experts * bank.params_per_expert
    assert row.flops == 2 * row.computed_params


def test_aux_losses_average_over_layers_by_default_or_sum_when_asked():
    torch.manual_seed(0)
    mean = tiny_model("moma").train()
    summed = tiny_model("moma", "model.moe.losses.reduce=sum").train()
    summed.load_state_dict(mean.state_dict())
    batch = make_batch(mean)
    a, b = mean(**batch).aux_losses["moe_balance"], summed(**batch).aux_losses["moe_balance"]
    reports = 2 * 2  # 2 layers x (text, image) groups
    assert torch.allclose(a * reports, b)
    assert 0.005 < float(a) < 0.05  # coefficient 0.01 times a balance value near 1
