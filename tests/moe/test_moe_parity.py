"""Parity with independent references: peft LoRA (MoLE with one expert) and HF's Mixtral sparse MoE block."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, LlamaConfig, MixtralConfig, Qwen2Config
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

from mmoe.moe.config import MoEConfig
from mmoe.moe.core.dispatch import GroupedDispatch, LoopDispatch
from mmoe.moe.core.experts import FFNExperts
from mmoe.moe.integration.inject import decoder_layers, inject_moe
from mmoe.moe.core.layer import MoEBlock, MoELayer
from mmoe.moe.core.routers import TopKRouter

MLP = ["gate_proj", "up_proj", "down_proj"]
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]


def tiny_llm(kind: str):
    common = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    config = LlamaConfig(**common) if kind == "llama" else Qwen2Config(**common)
    return AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
@pytest.mark.parametrize("dispatch", ["fast", "loop"])
@pytest.mark.parametrize("attention", [False, True])
def test_single_lora_expert_equals_peft_lora(kind, dispatch, attention):
    torch.manual_seed(0)
    base = tiny_llm(kind)
    ours, plain = copy.deepcopy(base), copy.deepcopy(base)
    targets = MLP + (ATTENTION if attention else [])
    reference = get_peft_model(base, LoraConfig(r=4, lora_alpha=12, lora_dropout=0.0, target_modules=targets, init_lora_weights=False))
    cfg = MoEConfig.model_validate({
        "experts": {"type": "lora", "num_experts": 1, "lora": {"rank": 4, "alpha": 12}},
        "router": {"type": "none"},
        "dispatch": dispatch,
        "attention_lora": {"rank": 4, "alpha": 12} if attention else None,
    })
    inject_moe(ours, cfg)
    peft_layers = reference.base_model.model.model.layers
    with torch.no_grad():
        for mine, theirs in zip(decoder_layers(ours), peft_layers):
            for name in MLP:
                lora = getattr(theirs.mlp, name)
                delta = mine.mlp.core.experts.deltas[name]
                delta.lora_A[0].copy_(lora.lora_A["default"].weight)
                delta.lora_B[0].copy_(lora.lora_B["default"].weight)
            for name in ATTENTION if attention else []:
                lora = getattr(theirs.self_attn, name)
                getattr(mine.self_attn, name).lora_A.copy_(lora.lora_A["default"].weight)
                getattr(mine.self_attn, name).lora_B.copy_(lora.lora_B["default"].weight)
    ids = torch.randint(0, 97, (2, 9))
    want = reference(input_ids=ids).logits
    got = ours(input_ids=ids).logits
    assert (want - plain(input_ids=ids).logits).abs().max() > 1e-3  # the LoRA is not a no-op
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dispatch", [LoopDispatch(), GroupedDispatch()])
def test_top2_ffn_experts_match_hf_mixtral_block(dispatch):
    torch.manual_seed(0)
    config = MixtralConfig(hidden_size=32, intermediate_size=48, num_local_experts=4, num_experts_per_tok=2, hidden_act="silu")
    config._experts_implementation = "eager"
    reference = MixtralSparseMoeBlock(config).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(std=0.2)
    inter = config.intermediate_size
    experts = FFNExperts(num_experts=4, hidden=32, intermediate=inter, kind="glu")
    router = TopKRouter(32, 4, top_k=2, score="softmax", renormalize=True)
    with torch.no_grad():
        router.gate.weight.copy_(reference.gate.weight)
        experts.gate_proj.copy_(reference.experts.gate_up_proj[:, :inter])
        experts.up_proj.copy_(reference.experts.gate_up_proj[:, inter:])
        experts.down_proj.copy_(reference.experts.down_proj)
    ours = MoEBlock(core=MoELayer(router=router, experts=experts, dispatch=dispatch)).eval()
    x = torch.randn(3, 7, 32)
    assert torch.allclose(ours(x), reference(x), atol=1e-5, rtol=1e-5)
