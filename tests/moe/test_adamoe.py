"""AdaMoE: null experts in the routing set, renormalisation over the picked true experts, the
null-bucket balance loss, true experts per token and the expert FLOPs it saves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mmoe.config import ConfigError
from mmoe.moe.core.dispatch import LoopDispatch
from mmoe.moe.core.experts import FFNExperts
from mmoe.moe.core.layer import MoELayer
from mmoe.moe.core.stats import RouterStats, merge_stats
from mmoe.moe.cost import moe_costs
from mmoe.moe.methods.adamoe import AdaMoEBalanceLoss, AdaMoERouter
from mmoe.moe.methods.moma import ModalityGroups
from tests.moe.helpers import make_batch, recipe, tiny_model

FIXTURES = Path(__file__).parent / "fixtures"
# Rows are the logits themselves (identity gate): experts 0, 1 are true, 2, 3 null; top-2.
LOGITS = torch.tensor([[2.0, 1.0, 0.0, 0.0], [0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 3.0, 2.0]])


def identity_router(num_real: int, num_experts: int, top_k: int, **kw) -> AdaMoERouter:
    router = AdaMoERouter(num_experts, num_experts, num_real=num_real, top_k=top_k, **kw)
    with torch.no_grad():
        router.gate.weight.copy_(torch.eye(num_experts))
    return router


def test_weights_are_renormalised_over_the_picked_true_experts_and_null_only_tokens_get_zero():
    router = identity_router(2, 4, 2)
    torch.manual_seed(0)
    bank = FFNExperts(num_experts=2, hidden=4, intermediate=6, num_null=2)
    layer = MoELayer(router=router, experts=bank, dispatch=LoopDispatch())
    x = LOGITS
    y, routed = layer(x, None)
    combine = routed[""].out.plan.combine
    e = math.e
    # row 0 picks experts 0 and 1 (both true): e^2 / (e^2 + e), e / (e^2 + e)
    assert combine[0, :2].tolist() == pytest.approx([e / (e + 1), 1 / (e + 1)], abs=1e-6)
    # row 1 picks null 2 and true 1: the one true expert gets weight 1
    assert combine[1, 1].item() == pytest.approx(1.0)
    # row 2 picks nulls 2 and 3 only: no true expert, zero output
    assert not combine[2, :2].any()
    expert = lambda i, row: bank.expert(i, x[row : row + 1])[0]
    assert torch.allclose(y[0], combine[0, 0] * expert(0, 0) + combine[0, 1] * expert(1, 0), atol=1e-6)
    assert torch.allclose(y[1], expert(1, 1), atol=1e-6)
    assert torch.equal(y[2], torch.zeros(4))


def test_stats_report_true_experts_per_token_and_the_flops_saved():
    out = identity_router(2, 4, 2, flops_per_expert=10.0)(LOGITS)
    stats = RouterStats()
    stats.add(out, num_real=2)
    got = stats.pop()
    assert got["true_experts_per_token"].item() == pytest.approx(1.0)  # (2 + 1 + 0) / 3
    assert got["expert_flops_saved"].item() == pytest.approx(10.0)  # skipped (0 + 1 + 2) / 3 experts x 10
    assert got["expert_flops_saved_share"].item() == pytest.approx(0.5)  # (0 + 1/2 + 2/2) / 3
    assert got["dropped_tokens"].item() == 1


def test_merged_stats_weight_true_experts_per_token_by_each_parts_tokens():
    """``mmoe analyze`` merges batches: ``true_experts_per_token`` is its own mean, not DynMoLE's
    ``experts_per_token`` (whose name it ends with)."""
    router = identity_router(2, 4, 2, flops_per_expert=10.0)
    stats = RouterStats()
    stats.add(router(LOGITS[:1]), num_real=2)
    first = stats.pop()
    stats.add(router(LOGITS[1:]), num_real=2)
    merged = merge_stats(first, stats.pop())
    assert merged["true_experts_per_token"].item() == pytest.approx(1.0)  # (2 + 1 + 0) / 3, as accumulated together
    assert merged["expert_flops_saved"].item() == pytest.approx(10.0)
    assert merged["num_tokens"].item() == 3


@pytest.mark.parametrize("bucket, counts", [(True, [1, 2, 1.5, 1.5]), (False, [1, 2, 2, 1])])
def test_balance_loss_counts_null_experts_as_one_averaged_bucket(bucket, counts):
    out = identity_router(2, 4, 2)(LOGITS)
    # picks: row 0 {0, 1}, row 1 {2, 1}, row 2 {2, 3}: counts [1, 2, 2, 1]; the bucket averages nulls to 1.5
    probs = LOGITS.softmax(-1).mean(0)
    expected = 4 * sum(c / 6 * p for c, p in zip(counts, probs.tolist()))
    assert AdaMoEBalanceLoss(1.0, 2, bucket)(out).item() == pytest.approx(expected, rel=1e-6)


def test_balance_loss_matches_the_released_adamoe_code():
    ref = json.loads((FIXTURES / "adamoe_reference.json").read_text())  # CengZihao/AdaMoE@180f122, see _comment
    n, m, k = ref["num_true"], ref["num_null"], ref["top_k"]
    losses = []
    for logits, expected in zip(ref["logits"], ref["loss_per_layer"]):
        out = identity_router(n, n + m, k)(torch.tensor(logits))
        losses.append(AdaMoEBalanceLoss(1.0, n)(out).item())
        assert losses[-1] == pytest.approx(expected, rel=1e-6)
    assert sum(losses) == pytest.approx(ref["loss_summed_over_layers"], rel=1e-6)  # losses.reduce: sum


def test_info_reports_expert_flops_saved_against_the_same_k_without_null_experts():
    rows = moe_costs(tiny_model("methods/adamoe"))
    per_expert = 3 * 128 * 256  # one upcycled glu expert
    for row in rows:
        assert row.true_experts_per_token == pytest.approx(4 * 4 / 12)
        assert row.flops_saved == pytest.approx(2 * (4 - 4 * 4 / 12) * per_expert)
        assert row.flops_saved_share == pytest.approx(2 / 3)
    lora = moe_costs(tiny_model("methods/adamoe", "model.moe.experts.type=lora"))
    assert all(row.flops_saved == 0 for row in lora)  # the wide LoRA product computes every expert anyway


def test_adamoe_composes_with_token_choice_moma_groups():
    model = tiny_model(
        "methods/adamoe", "model.moe.experts.num_experts=null", "model.moe.groups={text: 2, image: 3}", "model.moe.router.top_k=3",
    ).train()
    core = model.moe_blocks()[0].core
    assert isinstance(core, ModalityGroups)
    assert {name: layer.router.num_real for name, layer in core.groups.items()} == {"text": 2, "image": 3}
    out = model(**make_batch(model))
    assert out.aux_losses["adamoe_balance"] > 0
    for stats in out.router_stats.values():
        for group in ("text", "image"):
            assert 0 <= stats[f"{group}/true_experts_per_token"].item() < 3


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["model.moe.experts.num_null_experts=0"], "num_null_experts >= 1"),
        (["model.moe.router.type=expert_choice"], "token-choice"),
        (["model.moe.router.top_k=1"], "top_k=1"),
        (["model.moe.losses.balance=0.01"], "null bucket"),
    ],
)
def test_adamoe_config_errors_say_why(overrides, match):
    with pytest.raises(ConfigError, match=match):
        recipe("methods/adamoe", *overrides)


@pytest.mark.parametrize("experts, sparse", [(4, False), (20, True)])
def test_flops_saved_per_null_pick_use_the_dispatch_path_chosen_for_the_real_k(experts, sparse):
    """LoRA experts, top-4 of true + 8 null: ``fast`` decides on k=4 picks per token; with 4 true experts
    (4 * 5 > 4) it computes every expert, so a null pick saves nothing; with 20 (4 * 5 <= 20) it computes
    only the picked ones, so each null pick saves one expert's forward FLOPs, 2 * r * (in + out) summed
    over gate/up/down: 2 * 8 * ((128 + 256) * 2 + (256 + 128)) = 18432 (r 8, width 128, MLP 256)."""
    model = tiny_model(
        "methods/adamoe", "model.moe.experts={type: lora, num_experts: %d, num_null_experts: 8, lora: {rank: 8, alpha: 16}}" % experts,
    )
    router = model.moe_blocks()[0].core.router
    assert router.flops_per_expert == (18432 if sparse else 0)
