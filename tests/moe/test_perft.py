"""PERFT: routed PEFT experts beside the frozen experts of an HF MoE LLM (variants R, E, D, S)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from mmoe.config import ConfigError
from mmoe.model.parts import parameter_groups
from mmoe.moe.config import MoEConfig
from mmoe.moe.core.layer import MoEBlock
from mmoe.moe.integration.build import build_perft_block
from mmoe.moe.integration.inject import UnsupportedArchitecture, inject_moe
from mmoe.moe.methods.perft import PERFTLayer, sparse_block_class
from tests.moe.helpers import make_batch, recipe, tiny_model

FIXTURES = Path(__file__).parent / "fixtures"
MOE_LLMS = {
    "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2},
    "qwen2_moe": {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 32},
    "olmoe": {"num_experts": 4, "num_experts_per_tok": 2},
}
VARIANTS = {
    "R": {"perft": {"variant": "R", "rank": 2, "alpha": 4}, "experts": {"num_experts": 3}, "router": {"type": "top_k", "top_k": 2}},
    "E": {"perft": {"variant": "E", "rank": 2, "alpha": 4}},
    "D": {"perft": {"variant": "D", "adapter": "parallel", "rank": 3}, "experts": {"num_experts": 2}},
    "S": {"perft": {"variant": "S", "rank": 2, "alpha": 4}},
}


def moe_llm(model_type: str, **extra):
    config = AutoConfig.for_model(
        model_type, vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, **{**MOE_LLMS[model_type], **extra},
    )
    torch.manual_seed(0)
    llm = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():  # OLMoE / Qwen2-MoE gates start at zero: give the base routing something to do
        for p in llm.parameters():
            p.normal_(0, 0.1)
    return llm


def perturb_adapters(llm) -> None:
    """Non-zero second projections (a fresh PERFT expert is a no-op)."""
    for block in llm.modules():
        if isinstance(block, MoEBlock):
            for p in block.core.experts.parameters():
                p.data.normal_(0, 0.3)


@pytest.mark.parametrize("model_type", sorted(MOE_LLMS))
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_fresh_perft_model_computes_exactly_the_base_model(model_type, variant):
    llm = moe_llm(model_type)
    ids = torch.randint(0, 64, (2, 7))
    before = llm(ids).logits
    inject_moe(llm, MoEConfig.model_validate(VARIANTS[variant]))
    blocks = [m for m in llm.modules() if isinstance(m, MoEBlock)]
    assert len(blocks) == 2 and all(isinstance(b.core.base_moe, sparse_block_class(model_type)) for b in blocks)
    assert torch.equal(llm(ids).logits, before)


def hand_delta(core: PERFTLayer, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_j weights[:, j] * Delta_j(x), each Delta computed on its own from the bank's tensors."""
    bank = core.experts
    out = torch.zeros_like(x)
    for j in range(weights.shape[1]):
        if hasattr(bank, "deltas"):
            d = bank.deltas["hidden"]
            delta = x @ d.lora_A[j].T @ d.lora_B[j].T * bank.scaling
        else:
            delta = torch.nn.functional.silu(x @ bank.up_proj[j].T) @ bank.down_proj[j].T
        out = out + weights[:, j : j + 1] * delta
    return out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_block_output_is_base_moe_plus_the_weighted_peft_experts(variant):
    llm = moe_llm("olmoe")
    inject_moe(llm, MoEConfig.model_validate(VARIANTS[variant]))
    perturb_adapters(llm)
    block = llm.model.layers[0].mlp
    core = block.core
    x = torch.randn(1, 5, 32)
    flat = x[0]
    if variant == "R":
        probs = core.router.gate(flat).softmax(-1)
        top = torch.topk(probs, 2, dim=-1)
        weights = torch.zeros_like(probs).scatter(1, top.indices, top.values)  # top-2, OLMoE-style: not renormalised
    elif variant == "E":
        probs = flat @ core.base_moe.gate.weight.T
        top = torch.topk(probs.softmax(-1), 2, dim=-1)  # OLMoE: norm_topk_prob false
        weights = torch.zeros(5, 4).scatter(1, top.indices, top.values)
    else:
        weights = torch.ones(5, core.num_experts)
    expected = core.base_moe(x)[0] + hand_delta(core, flat, weights)
    assert torch.allclose(block(x)[0], expected, atol=1e-5)


def test_matches_the_released_perft_mixtral_block():
    ref = json.loads((FIXTURES / "perft_reference.json").read_text())  # liuyilun2000/PERFT@65519c8, see _comment
    t = lambda v: torch.tensor(v)
    d, ff, base = ref["hidden"], ref["intermediate"], ref["base"]
    config = AutoConfig.for_model("mixtral", hidden_size=d, intermediate_size=ff, num_local_experts=ref["experts"], num_experts_per_tok=ref["top_k"])
    lora = {"rank": ref["lora"]["r"], "alpha": ref["lora"]["lora_alpha"]}
    cfgs = {
        "R": {"perft": {"variant": "R", **lora}, "experts": {"num_experts": 4}, "router": {"type": "top_k", "top_k": 2, "renormalize": True}},
        "E": {"perft": {"variant": "E", **lora}},
        "D": {"perft": {"variant": "D", "adapter": "parallel", "rank": ref["parallel_hidden"]}, "experts": {"num_experts": 3}},
        "S": {"perft": {"variant": "S", **lora}},
    }
    x = t(ref["x"]).unsqueeze(0)
    for variant, cfg in cfgs.items():
        moe = sparse_block_class("mixtral")(config)
        with torch.no_grad():
            moe.gate.weight.copy_(t(base["gate"]))
            moe.experts.gate_up_proj.copy_(torch.cat([t(base["w1"]), t(base["w3"])], dim=1))
            moe.experts.down_proj.copy_(t(base["w2"]))
        block = build_perft_block(moe, MoEConfig.model_validate(cfg), dim=d)
        mine, theirs = block.core.experts, ref["variants"][variant]
        with torch.no_grad():
            for j, adapter in enumerate(theirs["adapters"]):
                if "A" in adapter:
                    mine.deltas["hidden"].lora_A[j].copy_(t(adapter["A"]))
                    mine.deltas["hidden"].lora_B[j].copy_(t(adapter["B"]))
                else:
                    mine.up_proj[j].copy_(t(adapter["w1"]))
                    mine.down_proj[j].copy_(t(adapter["w2"]))
            if variant == "R":
                block.core.router.gate.weight.copy_(t(theirs["router"]))
        assert torch.allclose(block(x)[0], t(theirs["output"]), atol=1e-5), variant


def test_base_experts_and_gates_stay_frozen_in_llm_and_peft_parts_are_declared():
    model = tiny_model("methods/perft")
    groups = parameter_groups(model)
    base = [n for n in groups if ".core.base_moe." in n]
    assert any(".base_moe.gate." in n for n in base) and any(".base_moe.experts." in n for n in base)
    assert {groups[n] for n in base} == {"llm"}
    assert {groups[n] for n in groups if ".core.experts." in n} == {"experts"}
    assert {groups[n] for n in groups if ".core.router." in n} == {"routers"}
    out = model.train()(**make_batch(model))
    assert out.aux_losses["moe_balance"] > 0
    assert all("router_entropy" in stats for stats in out.router_stats.values())


def test_perft_is_the_supported_path_for_moe_llms_and_refused_for_dense_ones():
    with pytest.raises(ConfigError, match="'qwen2' is not one PERFT wraps"):
        recipe("methods/perft", "model.llm.config.model_type=qwen2")
    with pytest.raises(ConfigError, match="'olmoe'.*model.moe.perft"):
        recipe("methods/perft", "model.moe.perft=null", "model.moe.experts={num_experts: 4}")
    llm = moe_llm("qwen2_moe", decoder_sparse_step=2)  # layer 0 dense, layer 1 sparse
    with pytest.raises(UnsupportedArchitecture, match="decoder layer 0: Qwen2MoeMLP"):
        inject_moe(llm, MoEConfig.model_validate(VARIANTS["S"]))
    inject_moe(llm, MoEConfig.model_validate({**VARIANTS["S"], "layers": [1]}))
    assert isinstance(llm.model.layers[1].mlp, MoEBlock)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["model.moe.perft.variant=E"], "leave moe.experts.num_experts unset"),
        (["model.moe.perft.variant=S"], "single PEFT expert"),
        (["model.moe.experts.num_experts=null", "model.moe.perft.variant=E"], "frozen base router: moe.router, moe.losses"),
        (["model.moe.groups={text: 2, image: 2}", "model.moe.experts.num_experts=null"], "ignores modality"),
        (["model.moe.perft.adapter=parallel", "model.moe.perft.dropout=0.1"], "dropout applies to LoRA"),
    ],
)
def test_perft_config_errors_say_why(overrides, match):
    with pytest.raises(ConfigError, match=match):
        recipe("methods/perft", *overrides)


def test_perft_r_composes_with_adamoe_null_experts():
    model = tiny_model(
        "methods/perft", "model.moe.experts.num_null_experts=4", "model.moe.router.top_k=3",
        "model.moe.adamoe={balance: 0.001}", "model.moe.losses.balance=0",
    ).train()
    assert model.moe_blocks()[0].core.router.num_real == 4
    out = model(**make_batch(model))
    assert out.aux_losses["adamoe_balance"] > 0
    assert all(0 <= stats["true_experts_per_token"].item() < 3 for stats in out.router_stats.values())


DYNMOLE_PERFT = {
    "perft": {"variant": "R", "rank": 2, "alpha": 4},
    "experts": {"num_experts": 6},
    "router": {"type": "dynmole", "init_std": 0.3, "dynmole": {"top_p": 0.75, "keep_top_k": 2, "entropy_threshold": 0.9}},
    "losses": {"balance": 0.001, "balance_type": "masked", "entropy": {"coef": 0.01, "type": "tsallis", "index": 1.1}},
}


def dynmole_weights(x: torch.Tensor, gate: torch.Tensor, *, top_p: float = 0.75, keep: int = 2, threshold: float = 0.9) -> torch.Tensor:
    """DynMoLE's rule by hand: soft over all experts when the normalised Tsallis (q 1.1, eps 1e-5)
    entropy exceeds the threshold, else top-p (the crossing expert left out) with at least ``keep``;
    weights are the unrenormalised probabilities."""
    probs = (x @ gate.T).softmax(-1)
    q, num = 1.1, probs.shape[1]
    tsallis = (1 - (probs + 1e-5).pow(q).sum(-1)) / (q - 1) / ((1 - num ** (1 - q)) / (q - 1))
    weights = torch.zeros_like(probs)
    for t in range(probs.shape[0]):
        if tsallis[t] > threshold:
            weights[t] = probs[t]
            continue
        total = 0.0
        for rank, e in enumerate(probs[t].argsort(descending=True).tolist()):
            total += probs[t, e].item()
            if rank < keep or total <= top_p:
                weights[t, e] = probs[t, e]
    return weights, tsallis > threshold


@pytest.mark.parametrize("model_type", sorted(MOE_LLMS))
def test_perft_r_with_dynmole_routing_follows_dynmole_rule_beside_the_frozen_base_experts(model_type):
    llm = moe_llm(model_type)
    inject_moe(llm, MoEConfig.model_validate(DYNMOLE_PERFT))
    perturb_adapters(llm)
    block = llm.model.layers[0].mlp
    core = block.core
    x = torch.randn(1, 24, 32) * torch.linspace(0.05, 3.0, 24).view(1, 24, 1)  # small inputs: unsure routing
    weights, soft = dynmole_weights(x[0], core.router.gate.weight)
    assert 0 < int(soft.sum()) < 24  # both regimes occur
    assert ((weights > 0).sum(-1)[~soft] < 6).all()  # the top-p tokens skip some experts
    with torch.no_grad():
        expected = core.base_moe(x)[0] + hand_delta(core, x[0], weights)
        assert torch.allclose(block(x)[0], expected, atol=1e-5)

