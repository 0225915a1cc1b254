"""Bad expert-layer configs fail with errors that say what to change; the recipes validate."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from mmoe.config import ConfigError
from mmoe.moe.config import SUPPORTED_ARCHITECTURES, MoEConfig
from mmoe.moe.core.experts import FFNExperts
from mmoe.moe.methods.moma import ModalityGroups
from mmoe.moe.integration.inject import UnsupportedArchitecture, inject_moe
from mmoe.moe.core.layer import MoEBlock, MoELayer
from mmoe.moe.core.context import RoutingContext
from mmoe.moe.core.dispatch import GroupedDispatch
from mmoe.moe.core.routers import TopKRouter
from tests.moe.helpers import recipe, tiny_model


@pytest.mark.parametrize("name", ["mole", "moma", "parrot", "parrot_qwen2_7b", "mole_llava15_7b", "moma_4t4i"])
def test_recipes_validate(name):
    recipe(name)


def test_paper_settings_in_full_size_recipes():
    parrot = recipe("parrot_qwen2_7b").model
    assert parrot.projector.moe.num_experts == 6 and parrot.vision.select_feature == "cls_patch"
    assert "clip-vit-large-patch14-336" in parrot.vision.name and "Qwen2-7B" in parrot.llm.name
    mole = recipe("mole_llava15_7b").model
    assert mole.moe.experts.type == "lora" and mole.moe.router.top_k == 1 and mole.llm.frozen
    assert mole.moe.experts.lora.targets == ["gate_proj", "up_proj", "down_proj"]
    moma = recipe("moma_4t4i").model
    assert (moma.moe.groups.text, moma.moe.groups.image) == (4, 4) and moma.moe.router.type == "expert_choice"


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (["model.moe.router.top_k=5"], "top_k=5 exceeds the 4 experts"),
        (["model.moe.groups.image=0"], "moe.groups.image is 0 but the model takes images"),
        (["model.moe.groups.text=0"], "moe.groups.text is 0"),
        (["model.moe.experts.num_experts=3"], "not moe.experts.num_experts"),
        (["model.moe.router.type=none"], "exactly one expert"),
        (["model.moe.groups.aux_router={}"], "router.type=expert_choice"),
        (["model.moe.experts.ffn.kind=mlp"], "needs ffn.kind=glu"),
        (["model.moe.routr.top_k=1"], "did you mean 'router'"),
    ],
)
def test_bad_moma_configs_name_the_problem(overrides, needle):
    with pytest.raises(ConfigError, match="invalid config") as err:
        recipe("moma", *overrides)
    assert needle in str(err.value)


def test_top_k_above_expert_count_is_rejected():
    with pytest.raises(ConfigError) as err:
        recipe("mole", "model.moe.router.top_k=5")
    assert "top_k=5 exceeds the 4 experts of moe.experts.num_experts" in str(err.value)
    recipe("mole", "model.moe.router.top_k=5", "model.moe.experts.num_null_experts=1")  # null experts count


def test_parrot_needs_the_cls_token():
    with pytest.raises(ConfigError) as err:
        recipe("parrot", "model.vision.select_feature=patch")
    assert "set vision.select_feature=cls_patch" in str(err.value)


def test_unsupported_llm_architecture_names_the_supported_ones():
    with pytest.raises(ConfigError) as err:
        recipe("mole", "model.llm.config.model_type=gpt2")
    assert "'gpt2'" in str(err.value) and all(arch in str(err.value) for arch in SUPPORTED_ARCHITECTURES)
    gpt2 = AutoModelForCausalLM.from_config(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50))
    with pytest.raises(UnsupportedArchitecture, match="supported .*llama, mistral, qwen2, qwen3, gemma"):
        inject_moe(gpt2, MoEConfig())


def test_layer_index_out_of_range():
    with pytest.raises(ConfigError, match=r"moe.layers \[5\] out of range: the LLM has 2 decoder layers"):
        tiny_model("mole", "model.moe.layers=[0,5]")


def test_image_tokens_without_an_image_group_fail_at_runtime():
    layer = MoELayer(router=TopKRouter(16, 2, top_k=1), experts=FFNExperts(num_experts=2, hidden=16, intermediate=32), dispatch=GroupedDispatch())
    block = MoEBlock(core=ModalityGroups({"text": layer}))
    block.routing_context = RoutingContext(torch.ones(1, 4, dtype=torch.bool), torch.tensor([[0, 1, 1, 0]]), None, "forward", None)
    with pytest.raises(ValueError, match=r"modality \['image'\] reached an MoE layer whose groups are \['text'\]"):
        block(torch.randn(1, 4, 16))
