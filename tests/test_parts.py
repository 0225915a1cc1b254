"""Declared parameter ownership: groups come from the modules that own parameters, never from names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmoe.config import ConfigError, load_config, parse_config
from mmoe.model.build import build_model
from mmoe.model.parts import buffer_groups, group_sizes, parameter_groups
from mmoe.moe.core.experts import FFNExperts, LoRADelta
from mmoe.moe.core.lora_linear import LoRALinear, merge_lora
from mmoe.moe.core.routers import RouterGate
from mmoe.moe.methods.moma import AuxRouter
from mmoe.moe.methods.parrot import ParrotProjector
from mmoe.train.config import StageConfig
from mmoe.train.stages import apply_stage
from tests.conftest import CONFIGS, tiny_with

HF_MOE_LLMS = {
    "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2},
    "qwen2_moe": {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 32},
    "qwen3_moe": {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32},
}


def moe_llm_recipe(model_type: str):
    llm = {
        "config": {
            "model_type": model_type, "vocab_size": 264, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": False,
            **HF_MOE_LLMS[model_type],
        },
        "dtype": "float32",
    }
    return tiny_with(llm=llm)


@pytest.mark.parametrize("model_type", sorted(HF_MOE_LLMS))
def test_an_hf_moe_llms_own_experts_and_gates_stay_in_llm(model_type):
    model = build_model(moe_llm_recipe(model_type))
    groups = parameter_groups(model)
    llm = {name for name in groups if name.startswith("llm.")}
    assert any(".mlp.experts." in name for name in llm) and any(".mlp.gate." in name for name in llm)
    assert {groups[name] for name in llm} == {"llm"}
    with pytest.raises(ConfigError, match="no such parameters"):
        apply_stage(model, StageConfig(name="s", trainable=["experts"]))
    trainable = apply_stage(model, StageConfig(name="s", trainable=["llm"]))
    assert set(trainable) == {"llm"} and len(trainable["llm"]) == len(llm)


@pytest.mark.parametrize("model_type", sorted(HF_MOE_LLMS))
def test_adding_mmoe_experts_to_an_moe_llm_is_a_clear_error(model_type):
    raw = moe_llm_recipe(model_type).model_dump(mode="json")
    raw["model"]["moe"] = {"experts": {"type": "lora", "num_experts": 2}}
    with pytest.raises(ConfigError, match=f"'{model_type}'.*PERFT"):
        parse_config(raw)


def test_each_mmoe_module_declares_its_groups():
    model = build_model(load_config(CONFIGS / "moma.yaml", ["model.moe.router.type=expert_choice", "model.moe.groups.aux_router={}",
                                                          "model.moe.attention_lora={rank: 2}"]))
    groups = parameter_groups(model)
    owners = {}
    for prefix, module in model.named_modules():
        for local, _ in module.named_parameters(recurse=False):
            owners[f"{prefix}.{local}"] = module
    expected = {RouterGate: "routers", FFNExperts: "experts"}
    for name, module in owners.items():
        if isinstance(module, tuple(expected)):
            assert groups[name] == expected[type(module)], name
        elif isinstance(module, LoRALinear):
            assert groups[name] == ("experts" if name.endswith(("lora_A", "lora_B")) else "llm"), name
        elif isinstance(module, nn.Linear) and isinstance(model.get_submodule(name.rsplit(".", 2)[0]), AuxRouter):
            assert groups[name] == "aux_routers", name
    assert sum(g == "aux_routers" for g in groups.values()) == 2 * 2 * 2  # layers x groups x (w1, w2)
    assert set(buffer_groups(model).values()) == {"aux_routers"}


def test_parrot_declares_its_router_and_experts_moe_projector():
    model = build_model(load_config(CONFIGS / "parrot.yaml"))
    assert isinstance(model.projector, ParrotProjector)
    groups = parameter_groups(model)
    projector = {groups[n] for n in groups if n.startswith("projector.layers.")}
    moe = {groups[n] for n in groups if n.startswith(("projector.router.", "projector.experts."))}
    assert projector == {"projector"} and moe == {"moe_projector"}
    sizes = group_sizes(model)
    assert sizes["moe_projector"] == sum(p.numel() for p in (*model.projector.router.parameters(), *model.projector.experts.parameters()))


def test_lora_delta_declares_experts():
    delta = LoRADelta(num_experts=2, rank=2, fan_in=4, fan_out=4)
    assert delta.declared_groups() == {"lora_A": "experts", "lora_B": "experts"}


def test_dense_lora_merge_computes_the_same_function():
    torch.manual_seed(0)
    holder = nn.Sequential(nn.Linear(8, 6))
    holder[0] = LoRALinear(holder[0], rank=2, alpha=4.0)
    nn.init.normal_(holder[0].lora_B, std=0.5)
    x = torch.randn(5, 8)
    want = holder(x)
    base_only = nn.functional.linear(x, holder[0].weight, holder[0].bias)
    assert float((want - base_only).abs().max()) > 1e-2  # the LoRA delta is not zero
    assert merge_lora(holder) == 1 and type(holder[0]) is nn.Linear
    assert torch.allclose(holder(x), want, atol=1e-5)
