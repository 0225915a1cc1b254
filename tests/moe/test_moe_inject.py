"""Injection into HF LLMs: supported architectures, layer selection, upcycling, generation, info."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoModelForCausalLM

from mmoe.model.info import describe
from mmoe.moe.config import MoEConfig
from mmoe.moe.integration.inject import decoder_layers, inject_moe
from mmoe.moe.core.layer import MoEBlock
from mmoe.moe.core.lora_linear import LoRALinear
from mmoe.moe.core.routers import FixedRouter
from mmoe.model.processor import MMoEProcessor
from mmoe.tokenization.templates import Turn
from tests.moe.helpers import make_batch, tiny_model

ARCHS = ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text"]


def hf_llm(model_type: str, layers: int = 4):
    config = AutoConfig.for_model(
        model_type, vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16,
    )
    return AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("model_type", ARCHS)
def test_upcycled_single_expert_reproduces_the_dense_model(model_type):
    """One FFN expert copied from the dense MLP and no router: the LLM's logits are unchanged."""
    llm = hf_llm(model_type)
    ids = torch.randint(0, 64, (2, 6))
    want = llm(input_ids=ids).logits
    inject_moe(llm, MoEConfig.model_validate({"experts": {"type": "ffn", "num_experts": 1}, "router": {"type": "none"}}))
    assert [name for name, m in llm.named_modules() if isinstance(m, MoEBlock)] == [f"model.layers.{i}.mlp" for i in range(4)]
    assert isinstance(llm.model.layers[0].mlp.core.router, FixedRouter)
    assert torch.allclose(llm(input_ids=ids).logits, want, atol=1e-5)


@pytest.mark.parametrize("spec,expected", [("all", [0, 1, 2, 3]), ("every_other", [0, 2]), ([3, 1], [1, 3])])
def test_layer_selection(spec, expected):
    llm = hf_llm("qwen2")
    inject_moe(llm, MoEConfig.model_validate({"layers": spec, "attention_lora": {"rank": 2}}))
    layers = decoder_layers(llm)
    assert [i for i, layer in enumerate(layers) if isinstance(layer.mlp, MoEBlock)] == expected
    assert all(isinstance(layer.self_attn.q_proj, LoRALinear) for layer in layers)
    assert type(llm).__module__.startswith("transformers.")  # still the unmodified HF class


def test_upcycling_noise_makes_experts_differ():
    llm = hf_llm("llama", layers=1)
    dense = llm.model.layers[0].mlp.gate_proj.weight.detach().clone()
    inject_moe(llm, MoEConfig.model_validate({"experts": {"type": "ffn", "num_experts": 3, "ffn": {"noise": 0.1}}}))
    experts = llm.model.layers[0].mlp.core.experts.gate_proj
    assert not torch.equal(experts[0], experts[1])
    assert torch.allclose(experts[0], dense, atol=0.1)


@pytest.mark.parametrize(
    "name,overrides",
    [
        ("mole", ()),
        ("moma", ()),
        ("parrot", ()),
        ("moma", ("model.moe.router.type=expert_choice", "model.moe.groups.aux_router={}", "model.moe.router.causal_fallback=true")),
    ],
)
def test_generation_with_cache(name, overrides):
    model = tiny_model(name, *overrides).eval()
    processor = MMoEProcessor.from_model(model)
    batch = processor.prompts([[Turn("user", "<image>\nWhat is it?")], [Turn("user", "Hi")]], [[Image.new("RGB", (32, 32))], []])
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 2
    assert all(block.routing_context is None for block in model.moe_blocks())  # nothing lingers after generate


def test_info_reports_expert_parameters_active_parameters_and_flops():
    model = tiny_model("mole")
    text = describe(model)
    assert "expert params" in text and "active/token" in text and "FLOPs/token" in text
    assert "llm.model.layers.0.mlp" in text and "lora" in text
    text = describe(tiny_model("parrot"))
    assert "projector" in text and "parrot/glu" in text


def test_gradient_checkpointing_routes_identically_and_records_once():
    plain = tiny_model("moma").train()
    checkpointed = tiny_model("moma", "model.llm.gradient_checkpointing=true").train()
    checkpointed.load_state_dict(plain.state_dict())
    batch = make_batch(plain)
    outs = []
    for model in (plain, checkpointed):
        out = model(**batch)
        out.loss.backward()
        outs.append(out)
        phases = {block.routing_context.phase if block.routing_context else None for block in model.moe_blocks()}
        assert phases == ({"recompute"} if model is checkpointed else {None})  # kept only for the replay, which records nothing
    assert torch.allclose(outs[0].loss, outs[1].loss)
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-6), name
