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


@pytest.mark.parametrize("router", [
    ("model.moe.router.type=expert_choice", "model.moe.router.capacity_factor=1.0"),
    ("model.moe.router.type=dynmole", "model.moe.router.dynmole.entropy_threshold=1.0", "model.moe.router.dynmole.top_p=0.3",
     "model.moe.router.dynmole.keep_top_k=1"),
])
def test_a_variable_plan_of_one_expert_on_average_is_costed_as_gathered_not_sorted(router):
    """Expert choice at capacity 1 and DynMoLE's top-p reach one expert per token on average but
    not one each: the fast dispatch gathers and scatters them, so 4 experts are under its factor
    of 5 and it takes the wide product; only a declared one-expert plan sorts rows from 2 experts."""
    model = tiny_model("mole", *router)
    layer = model.moe_blocks()[0].core
    row = moe_costs(model)[0]
    base = sum(p.numel() for p in model.moe_blocks()[0].base.parameters())
    assert row.experts_per_token == 1.0
    assert row.computed_params == base + row.router_params + 4 * layer.experts.params_per_expert
    assert not layer.router.one_expert_per_token()
    top_1 = moe_costs(tiny_model("mole"))[0]
    assert top_1.computed_params == base + top_1.router_params + 1 * layer.experts.params_per_expert


def test_expert_choice_reports_that_a_token_reaches_none_to_all_experts():
    row = moe_costs(tiny_model("mole", "model.moe.router.type=expert_choice"))[0]
    assert row.experts_range == (0.0, 4.0) and row.experts_per_token == 1.0


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
