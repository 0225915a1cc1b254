"""DynMoLE, Mixture of Routers and GW-MoE routing: hand-computed small cases and reference fixtures.

Fixtures (tests/moe/fixtures/*.json, each naming its reference repository and commit in its
``reference`` field) hold inputs and the outputs of the public reference code, run once on CPU.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mmoe.moe.config import EntropyLossConfig
from mmoe.moe.core.entropy import entropy
from mmoe.moe.core.losses import BalanceLoss, EntropyLoss
from mmoe.moe.core.routers import TokenInfo, TopKRouter
from mmoe.moe.methods.dynmole import DynMoLERouter, top_p_mask
from mmoe.moe.methods.gw import GWBroadcastRouter, first_per_sequence
from mmoe.moe.methods.mor import MixtureOfRouters
from tests.moe.helpers import CONFIGS, tiny_model

FIXTURES = Path(__file__).parent / "fixtures"


def identity_gate(router, num: int) -> None:
    """Gate = identity, so a router's inputs are its logits."""
    with torch.no_grad():
        router.gate.weight.copy_(torch.eye(num))


def dynmole(num: int, **kw) -> DynMoLERouter:
    settings = dict(top_p=0.75, keep_top_k=1, entropy_threshold=0.9, entropy_type="tsallis", entropy_index=2.0, entropy_eps=0.0)
    router = DynMoLERouter(num, num, **{**settings, **kw}).train()
    identity_gate(router, num)
    return router


P = [0.5, 0.3, 0.15, 0.05]  # cumulative 0.5, 0.8, 0.95, 1.0
UNIFORM = [0.25] * 4


def test_top_p_leaves_out_the_expert_that_crosses_and_keeps_at_least_k():
    probs = torch.tensor([P])
    assert top_p_mask(probs, top_p=0.75, keep_top_k=1).tolist() == [[True, False, False, False]]
    assert top_p_mask(probs, top_p=0.9, keep_top_k=1).tolist() == [[True, True, False, False]]
    assert top_p_mask(probs, top_p=0.3, keep_top_k=3).tolist() == [[True, True, True, False]]
    shuffled = torch.tensor([[0.15, 0.5, 0.05, 0.3]])
    assert top_p_mask(shuffled, top_p=0.9, keep_top_k=1).tolist() == [[False, True, False, True]]


def test_tsallis_and_renyi_entropy_by_hand():
    p = torch.tensor([P])
    squares = sum(v * v for v in P)  # 0.365
    assert entropy(p, "tsallis", index=2.0).item() == pytest.approx((1 - squares) / 0.75, abs=1e-6)
    assert entropy(p, "renyi", index=2.0).item() == pytest.approx(-math.log(squares) / math.log(4), abs=1e-6)
    shannon = -sum(v * math.log(v) for v in P) / math.log(4)
    assert entropy(p, "tsallis", index=1.0).item() == pytest.approx(shannon, abs=1e-6)
    assert entropy(torch.tensor([UNIFORM]), "tsallis", index=1.1).item() == pytest.approx(1.0, abs=1e-6)


def test_dynmole_routes_soft_above_the_threshold_and_top_p_below_without_renormalising():
    logits = torch.tensor([P, UNIFORM]).log()
    # Tsallis q=2 of P, normalised: (1 - 0.365) / 0.75 = 0.8467 < 0.9 -> top-p; the uniform token: 1.0 > 0.9 -> soft.
    out = dynmole(4)(logits)
    assert out.plan.mask.tolist() == [[True, False, False, False], [True] * 4]
    assert torch.allclose(out.plan.combine, torch.tensor([[0.5, 0, 0, 0], UNIFORM]), atol=1e-6)
    assert out.extras["dynmole_broadcast_sum"].tolist() == [0.0, 1.0]
    assert out.extras["experts_per_token_sum"].tolist() == [1.0, 4.0]
    soft = dynmole(4, entropy_threshold=0.8)(logits)  # 0.8467 > 0.8: P's token is now soft-routed too
    assert soft.plan.mask.all() and torch.allclose(soft.plan.combine[0], torch.tensor(P), atol=1e-6)
    never = dynmole(4, entropy_threshold=1.0, top_p=0.6)(logits)  # threshold >= 1: top-p for every token
    assert never.plan.mask.tolist() == [[True, False, False, False], [True, True, False, False]]


def test_dynmole_losses_by_hand():
    out = dynmole(4)(torch.tensor([P, UNIFORM]).log())
    # masked weights f = mean([0.5,0,0,0], [.25]*4) ; P = mean(P, uniform) ; 4 * sum f P
    f = [(0.5 + 0.25) / 2, 0.125, 0.125, 0.125]
    mean_p = [(a + 0.25) / 2 for a in P]
    assert BalanceLoss(1.0, "masked")(out).item() == pytest.approx(4 * sum(a * b for a, b in zip(f, mean_p)), abs=1e-6)
    expected = ((1 - 0.365) / 0.75 + 1.0) / 2
    loss = EntropyLoss(1.0, EntropyLossConfig(type="tsallis", index=2.0, eps=0.0))(out)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()  # the entropy loss reaches the router
    assert out.logits.requires_grad


def test_dynmole_experts_per_token_range_and_the_value_at_uniform_routing_by_hand():
    # Uniform routing has normalised entropy 1: above a 0.9 threshold every token is soft-routed (6 of 6).
    assert dynmole(6, keep_top_k=2).expected_experts() == 6.0
    assert dynmole(6, keep_top_k=2).experts_range() == (2.0, 6.0)
    # No broadcast: uniform 1/6 sums to 4/6 <= 0.75 < 5/6, so top-p keeps 4; the 5th crosses and is left
    # out, and so is the last expert of any distribution: at most 5.
    no_broadcast = dynmole(6, keep_top_k=2, entropy_threshold=1.0)
    assert no_broadcast.expected_experts() == 4.0 and no_broadcast.experts_range() == (2.0, 5.0)
    # top-p 0.2 keeps one uniform expert (1/6 <= 0.2 < 2/6); keep_top_k raises it to 3.
    assert dynmole(6, keep_top_k=3, entropy_threshold=1.0, top_p=0.2).expected_experts() == 3.0


def test_info_prints_the_dynmole_range_and_counts_flops_at_uniform_routing(capsys):
    from mmoe.cli import main
    from mmoe.moe.cost import moe_costs

    rows = moe_costs(tiny_model("methods/dynmole", "model.moe.router.dynmole.entropy_threshold=1.0"))
    per_expert = 8 * (128 + 256) * 3  # rank 8 on gate/up (128 -> 256) and down (256 -> 128)
    frozen_mlp, router = 3 * 128 * 256, 128 * 6
    for row in rows:  # 4 of 6 at uniform routing: 4 x 4 > 6, the wide product computes all 6
        assert (row.experts_per_token, row.experts_range) == (4.0, (2.0, 5.0))
        assert row.computed_params == frozen_mlp + router + 6 * per_expert
    assert main(["info", str(CONFIGS / "methods/dynmole.yaml")]) == 0
    printed = capsys.readouterr().out
    assert printed.count("experts/token are data-dependent, 2 to 6; 6 at uniform routing") == 2  # one per LLM layer


@pytest.mark.parametrize("case", json.loads((FIXTURES / "dynmole_reference.json").read_text())["cases"])
def test_dynmole_matches_the_reference_code(case):
    s = case["settings"]
    logits = torch.tensor(case["logits"])
    router = DynMoLERouter(
        logits.shape[1], logits.shape[1], top_p=s["top_p"], keep_top_k=s["keep_top_k"], entropy_threshold=s["entropy_threshold"],
        entropy_type=s["entropy_type"], entropy_index=s["entropy_index"], entropy_eps=s["entropy_eps"],
    ).train()
    identity_gate(router, logits.shape[1])
    out = router(logits)
    assert torch.allclose(out.extras["dynmole_entropy_sum"], torch.tensor(case["entropy"]), atol=1e-5)
    assert torch.allclose(out.plan.combine, torch.tensor(case["weights"]), atol=1e-6)
    loss_cfg = EntropyLossConfig(type=s["entropy_type"], index=s["entropy_index"], eps=s["entropy_eps"])
    assert EntropyLoss(1.0, loss_cfg)(out).item() == pytest.approx(case["entropy_loss"], abs=1e-5)
    assert BalanceLoss(1.0, "masked")(out).item() == pytest.approx(case["balance_loss"], abs=1e-5)


def mor(combine: str, **kw) -> MixtureOfRouters:
    """Two sub-routers over 3 experts on a 1-d input x = 1: the gate weights are the logits."""
    router = MixtureOfRouters(1, 3, num_routers=2, top_k=2, renormalize=True, combine=combine, **kw).train()
    with torch.no_grad():
        router.gate.weight.copy_(torch.tensor([[0.6], [0.3], [0.1], [0.1], [0.3], [0.6]]).log())
        router.main.weight.copy_(torch.tensor([[0.75], [0.25]]).log())
    return router


def test_mixture_of_routers_mixes_sub_router_probabilities_by_the_main_router():
    out = mor("probs", router_balance=1.0)(torch.ones(1, 1))
    mixed = [0.75 * a + 0.25 * b for a, b in zip([0.6, 0.3, 0.1], [0.1, 0.3, 0.6])]  # [0.475, 0.3, 0.225]
    assert torch.allclose(out.scores[0], torch.tensor(mixed), atol=1e-6)
    assert out.plan.mask.tolist() == [[True, True, False]]
    assert torch.allclose(out.plan.combine[0], torch.tensor([0.475 / 0.775, 0.3 / 0.775, 0.0]), atol=1e-6)
    main_entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(2)
    assert out.extras["mor_main_entropy_sum"].item() == pytest.approx(main_entropy, abs=1e-6)
    # main-router balance: S * sum_s f_s P_s with f = [1, 0], P = [0.75, 0.25]
    assert out.aux_losses["mor_router_balance"].item() == pytest.approx(2 * 0.75, abs=1e-6)


def test_mixture_of_routers_logit_combination_by_hand():
    out = mor("logits")(torch.ones(1, 1))
    weighted = [0.6**0.75 * 0.1**0.25, 0.3, 0.1**0.75 * 0.6**0.25]  # softmax(sum_s g_s log p_s)
    expected = torch.tensor([v / sum(weighted) for v in weighted])
    assert torch.allclose(out.scores[0], expected, atol=1e-6)
    assert not out.aux_losses


def test_mixture_of_routers_trains_its_main_router_through_the_lm_path():
    router = mor("probs")
    x = torch.randn(5, 1)
    (router(x).plan.combine * torch.arange(3.0)).sum().backward()
    assert router.main.weight.grad.abs().sum() > 0 and router.gate.weight.grad.abs().sum() > 0


def gw(threshold: float, **kw) -> tuple[GWBroadcastRouter, TopKRouter]:
    base = TopKRouter(4, 4, top_k=1)
    identity_gate(base, 4)
    return GWBroadcastRouter(main=base, threshold=threshold, **kw).train(), base


def test_gw_broadcasts_uncertain_tokens_to_every_expert_weighted_by_p():
    router, _ = gw(0.9)
    probs = torch.tensor([[0.7, 0.1, 0.1, 0.1], UNIFORM])
    out = router(probs.log())
    assert out.plan.mask.tolist() == [[True, False, False, False], [True] * 4]
    assert torch.allclose(out.plan.combine, torch.tensor([[0.7, 0, 0, 0], UNIFORM]), atol=1e-6)
    assert out.extras["gw_broadcast_sum"].tolist() == [0.0, 1.0]
    nats = -sum(v * math.log(v + 1e-5) for v in [0.7, 0.1, 0.1, 0.1])
    assert out.extras["gw_entropy_sum"][0].item() == pytest.approx(nats / math.log(4), abs=1e-6)


def test_gw_caps_broadcast_tokens_per_sequence_in_position_order():
    flags = torch.tensor([True, True, True, False, True, True])
    # tokens listed out of order: sequence 0 has positions 5, 1, 3; sequence 1 has 0, 2, 4
    tokens = TokenInfo(torch.tensor([0, 0, 0, 1, 1, 1]), torch.tensor([5, 1, 3, 0, 2, 4]))
    assert first_per_sequence(flags, tokens, 2).tolist() == [False, True, True, False, True, True]
    assert first_per_sequence(flags, tokens, 1).tolist() == [False, True, False, False, True, False]


def test_gw_in_eval_mode_is_plain_top_k():
    router, base = gw(0.1)
    x = torch.randn(16, 4) * 0.1
    router.eval()
    base.eval()
    mine, plain = router(x), base(x)
    assert torch.equal(mine.plan.mask, plain.plan.mask) and torch.equal(mine.plan.combine, plain.plan.combine)
    assert mine.plan.mask.sum().item() == 16
    assert router.train()(x).plan.mask.sum().item() == 64  # in training every token (entropy >= 0.1) is broadcast


def test_gw_matches_the_reference_broadcast_selection():
    ref = json.loads((FIXTURES / "gw_reference.json").read_text())
    base = TopKRouter(8, 4, top_k=1)
    with torch.no_grad():
        base.gate.weight.copy_(torch.tensor(ref["router_weight"]))
    router = GWBroadcastRouter(main=base, threshold=ref["threshold_nats"], normalized=False, max_slots=ref["max_num_slots"]).train()
    hidden = torch.tensor(ref["hidden_states"])
    batch, length, _ = hidden.shape
    flat = torch.arange(batch * length)
    out = router(hidden.reshape(batch * length, -1), TokenInfo(flat // length, flat % length))
    assert out.extras["gw_broadcast_sum"].bool().tolist() == [b for row in ref["broadcast"] for b in row]
    nats = out.extras["gw_entropy_sum"] * math.log(4)
    assert torch.allclose(nats, torch.tensor(ref["entropy"]).reshape(-1), atol=1e-5)
    top1 = out.scores.argmax(-1)
    assert top1.tolist() == [e for seq in ref["expert_index"] for e in seq]


def test_gw_wraps_a_mixture_of_routers_built_from_config():
    from mmoe.moe.config import RouterConfig
    from mmoe.moe.core.routers import build_router

    cfg = RouterConfig(type="mor", top_k=2, renormalize=True, mor={"num_routers": 2}, gw={"threshold": 0.1})
    router = build_router(cfg, dim=4, num_experts=3).train()
    assert isinstance(router, GWBroadcastRouter) and isinstance(router.main, MixtureOfRouters)
    x = torch.randn(6, 4)
    assert router(x).plan.mask.all()  # every token above 0.1 of ln 3: all broadcast in training
    router.eval()
    assert torch.equal(router(x).plan.combine, router.main(x).plan.combine) and router(x).plan.mask.sum() == 12
