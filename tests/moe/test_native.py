"""``moe.experts.ffn.init: native``: an MoE LLM's own sparse-MoE blocks adopted as mmoe MoE layers compute
what the HF blocks compute, and their gates and experts are declared 'routers' and 'experts'.

Reference: the unmodified HF block or model (transformers' own forward and autograd)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from mmoe.config import load_config
from mmoe.model.build import build_model
from mmoe.model.parts import parameter_groups
from mmoe.moe.config import MoEConfig
from mmoe.moe.core.experts import FFNExperts
from mmoe.moe.core.layer import MoEBlock
from mmoe.moe.core.routers import TopKRouter
from mmoe.moe.integration.inject import UnsupportedArchitecture, inject_moe
from mmoe.moe.integration.native import NativeMismatch, adopt_native_block
from mmoe.moe.methods.perft import sparse_block_class
from mmoe.moe.methods.ceft import train_selected_experts
from mmoe.moe.methods.router_lens import ExpertSelection, GroupSelection, read_selection, select_experts
from mmoe.train.loop import train
from tests.conftest import CONFIGS
from tests.moe.helpers import make_batch
from tests.train.toydata import recording_factory

# case -> (model_type, its config's expert settings, whether its gate renormalises the top-k weights)
BLOCKS = {
    "olmoe": ("olmoe", {"num_experts": 8, "num_experts_per_tok": 3}, False),
    "olmoe-norm_topk_prob": ("olmoe", {"num_experts": 8, "num_experts_per_tok": 3, "norm_topk_prob": True}, True),
    "mixtral": ("mixtral", {"num_local_experts": 8, "num_experts_per_tok": 2}, True),
    "qwen3_moe": ("qwen3_moe", {"num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 24}, False),
    "qwen3_moe-norm_topk_prob": ("qwen3_moe", {"num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 24, "norm_topk_prob": True}, True),
}
TOP_LEVEL = {"model": "llm", "lm_head": "llm"}  # a bare HF causal LM's parts, all 'llm' unless declared


def native(num_experts: int, top_k: int, renormalize: bool, **moe) -> MoEConfig:
    return MoEConfig.model_validate({
        "experts": {"type": "ffn", "num_experts": num_experts, "ffn": {"init": "native"}},
        "router": {"type": "top_k", "top_k": top_k, "renormalize": renormalize}, **moe,
    })


def hf_config(model_type: str, **extra):
    config = AutoConfig.for_model(model_type, hidden_size=32, intermediate_size=48, **extra)
    config._experts_implementation = "eager"
    return config


def randomize(module: torch.nn.Module, std: float = 0.1) -> None:
    """Gaussian weights (OLMoE / Qwen3-MoE gates start at zero, which routes every token alike)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, std)


@pytest.mark.parametrize("dispatch", ["fast", "loop"])
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_an_adopted_block_computes_the_hf_sparse_moe_block(name, dispatch):
    model_type, extra, renormalize = BLOCKS[name]
    block = sparse_block_class(model_type)(hf_config(model_type, **extra))
    randomize(block)
    mine = adopt_native_block(block, native(8, extra["num_experts_per_tok"], renormalize, dispatch=dispatch), model_type=model_type, index=0)
    assert isinstance(mine.core.router, TopKRouter) and isinstance(mine.core.experts, FFNExperts)
    assert torch.equal(mine.core.router.gate.weight, block.gate.weight)
    inter = block.experts.down_proj.shape[2]
    assert torch.equal(torch.cat([mine.core.experts.gate_proj, mine.core.experts.up_proj], 1), block.experts.gate_up_proj)
    x = torch.randn(2, 9, 32)
    expected = block(x)
    assert expected.abs().amax() > 0.1 and inter == extra.get("moe_intermediate_size", 48)
    torch.testing.assert_close(mine(x), expected, rtol=1e-5, atol=1e-6)


def olmoe_llm(**extra) -> torch.nn.Module:
    config = AutoConfig.for_model(
        "olmoe", vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, eos_token_id=0, **extra,
    )
    llm = AutoModelForCausalLM.from_config(config)
    randomize(llm)
    for layer in llm.model.layers:  # sparse-MoE blocks that matter to the output, so their gradients are sizeable
        randomize(layer.mlp, std=0.5)
    return llm


def test_a_whole_tiny_olmoe_computes_the_same_logits_after_adoption():
    llm = olmoe_llm().eval()
    ids = torch.randint(0, 64, (2, 7), generator=torch.Generator().manual_seed(1))
    before = llm(ids).logits
    inject_moe(llm, native(4, 2, False))
    assert all(isinstance(layer.mlp, MoEBlock) for layer in llm.model.layers)
    assert not any(isinstance(m, sparse_block_class("olmoe")) for m in llm.modules())
    torch.testing.assert_close(llm(ids).logits, before, rtol=1e-5, atol=1e-5)


def test_gates_are_routers_and_experts_are_experts_and_their_gradients_are_the_hf_ones():
    reference, llm = olmoe_llm(), olmoe_llm()
    inject_moe(llm, native(4, 2, False))
    groups = parameter_groups(llm, top_level=TOP_LEVEL)
    by_group = {g: sorted(n for n in groups if groups[n] == g) for g in set(groups.values())}
    assert by_group["routers"] == [f"model.layers.{i}.mlp.core.router.gate.weight" for i in range(2)]
    assert by_group["experts"] == sorted(f"model.layers.{i}.mlp.core.experts.{w}" for i in range(2) for w in ("down_proj", "gate_proj", "up_proj"))
    ids = torch.randint(0, 64, (2, 7), generator=torch.Generator().manual_seed(2))
    reference(ids, labels=ids).loss.backward()
    llm(ids, labels=ids).loss.backward()
    for i in range(2):
        ref, mine = reference.model.layers[i].mlp, llm.model.layers[i].mlp.core
        assert ref.gate.weight.grad.norm() > 5e-4  # the LM loss reaches the gate (top-2, not renormalised); measured 1.1e-3, 2.7e-3
        torch.testing.assert_close(mine.router.gate.weight.grad, ref.gate.weight.grad, rtol=1e-4, atol=1e-8)
        gate_up = torch.cat([mine.experts.gate_proj.grad, mine.experts.up_proj.grad], 1)
        torch.testing.assert_close(gate_up, ref.experts.gate_up_proj.grad, rtol=1e-4, atol=1e-8)
        torch.testing.assert_close(mine.experts.down_proj.grad, ref.experts.down_proj.grad, rtol=1e-4, atol=1e-8)


def test_routers_only_training_changes_only_the_adopted_gates():
    llm = olmoe_llm()
    inject_moe(llm, native(4, 2, False))
    groups = parameter_groups(llm, top_level=TOP_LEVEL)
    for name, p in llm.named_parameters():
        p.requires_grad_(groups[name] == "routers")
    before = {n: p.detach().clone() for n, p in llm.named_parameters()}
    optimizer = torch.optim.SGD([p for p in llm.parameters() if p.requires_grad], lr=1.0)
    ids = torch.randint(0, 64, (2, 7), generator=torch.Generator().manual_seed(3))
    llm(ids, labels=ids).loss.backward()
    optimizer.step()
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in llm.named_parameters()}
    assert {n for n, m in moved.items() if m > 0} == {n for n in groups if groups[n] == "routers"}
    assert min(moved[n] for n in groups if groups[n] == "routers") > 1e-4


@pytest.mark.parametrize(
    ("moe", "message"),
    [
        ((3, 2, False), r"moe.experts.num_experts=3 but the model's is 4"),
        ((4, 1, False), r"moe.router.top_k=1 but the model's is 2"),
        ((4, 2, True), r"moe.router.renormalize=True but the model's is False"),
    ],
)
def test_stated_routing_that_is_not_the_models_is_refused(moe, message):
    with pytest.raises(NativeMismatch, match=message):
        inject_moe(olmoe_llm(), native(*moe))


def test_qwen2_moe_is_refused_naming_its_shared_expert():
    config = AutoConfig.for_model(
        "qwen2_moe", vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
        num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, shared_expert_intermediate_size=16,
    )
    with pytest.raises(UnsupportedArchitecture, match="shared expert") as err:
        inject_moe(AutoModelForCausalLM.from_config(config), native(4, 2, False))
    assert "mixtral, qwen3_moe, olmoe" in str(err.value) and "PERFT" in str(err.value)


def test_native_on_a_dense_llm_or_a_dense_layer_is_refused():
    dense = AutoConfig.for_model("llama", vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=1, num_attention_heads=4)
    with pytest.raises(UnsupportedArchitecture, match="'llama' is not one it adopts.*ffn.init=upcycle"):
        inject_moe(AutoModelForCausalLM.from_config(dense), native(4, 2, False))
    mixed = AutoConfig.for_model(
        "qwen3_moe", vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, mlp_only_layers=[1],
    )
    with pytest.raises(UnsupportedArchitecture, match="decoder layer 1: Qwen3MoeMLP is not .*native adopts an MoE block"):
        inject_moe(AutoModelForCausalLM.from_config(mixed), native(4, 2, False))
    llm = AutoModelForCausalLM.from_config(mixed)
    inject_moe(llm, native(4, 2, False, layers=[0]))
    assert isinstance(llm.model.layers[0].mlp, MoEBlock) and not isinstance(llm.model.layers[1].mlp, MoEBlock)


def test_mixtral_training_jitter_on_the_experts_inputs_is_refused():
    block = sparse_block_class("mixtral")(hf_config("mixtral", num_local_experts=4, num_experts_per_tok=2, router_jitter_noise=0.1))
    with pytest.raises(NativeMismatch, match="router_jitter_noise=0.1"):
        adopt_native_block(block, native(4, 2, True), model_type="mixtral", index=0)


@pytest.mark.parametrize(
    ("moe", "message"),
    [
        ({"experts": {"type": "ffn", "ffn": {"init": "native"}}}, "state their expert count in moe.experts.num_experts"),
        ({"experts": {"type": "ffn", "num_experts": 4, "ffn": {"init": "native", "noise": 0.1}}}, "moe.experts.ffn.noise would change"),
        ({"experts": {"type": "ffn", "num_experts": 4, "ffn": {"init": "native"}}, "router": {"type": "soft"}}, "route softmax top-k"),
        ({"experts": {"type": "ffn", "num_experts": 4, "num_null_experts": 1, "ffn": {"init": "native"}}}, "null experts"),
    ],
)
def test_native_config_refuses_what_would_change_the_adopted_function(moe, message):
    with pytest.raises(ValueError, match=message):
        MoEConfig.model_validate(moe)


NATIVE_LENS = [  # configs/methods/perft.yaml's tiny OLMoE (4 experts, top-2), its blocks adopted; Router Lens's router phase
    "model.moe={layers: all, experts: {type: ffn, num_experts: 4, ffn: {init: native}}, router: {type: top_k, top_k: 2}}",
    "train.stage={name: router_lens, trainable: [routers]}", "train.router_lens={top_experts: 2}",
    "train.progress=false", "train.report_to=[]", "train.resume=none", "train.micro_batch_size=4", "train.max_steps=4",
]


def test_a_native_recipe_trains_the_adopted_routers_only_and_router_lens_counts_them(tmp_path):
    cfg = load_config(CONFIGS / "methods" / "perft.yaml", [*NATIVE_LENS, f"train.output_dir={tmp_path}"])
    box = {}
    train(cfg, recording_factory(box))
    model, before = box["model"], box["before"]
    groups = parameter_groups(model)
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in model.named_parameters()}
    assert {groups[n] for n, m in moved.items() if m > 0} == {"routers"}
    routers = [n for n in groups if groups[n] == "routers"]
    assert routers == [f"llm.model.layers.{i}.mlp.core.router.gate.weight" for i in range(2)]
    assert min(moved[n] for n in routers) > 1e-4  # 4 AdamW steps at lr 3e-3 (warmup included)
    assert all(moved[n] == 0.0 for n in groups if groups[n] == "experts")  # the adopted experts stay bit-identical
    selection = read_selection(tmp_path / "router_lens.json")
    counts = [selection.blocks[f"llm.model.layers.{i}.mlp"]["-"].counts for i in range(2)]
    assert sum(counts[0]) == sum(counts[1]) > 0 and sum(counts[0]) % 2 == 0  # every counted token: 2 experts per layer
    assert all(selection.blocks[f"llm.model.layers.{i}.mlp"]["-"].experts == select_experts(counts[i], 2) for i in range(2))


def test_ceft_trains_only_the_selected_slices_of_adopted_experts():
    model = build_model(load_config(CONFIGS / "methods" / "perft.yaml", NATIVE_LENS[:1])).train()
    chosen = {"llm.model.layers.0.mlp": [0, 2], "llm.model.layers.1.mlp": [3]}
    blocks = {name: {"-": GroupSelection(num_experts=4, counts=[0.0] * 4, experts=e)} for name, e in chosen.items()}
    selection = ExpertSelection(property="all", statistic="tokens_per_expert", top_experts=2, blocks=blocks)
    groups = parameter_groups(model)
    for name, param in model.named_parameters():
        param.requires_grad_(groups[name] == "experts")
    assert train_selected_experts(model, selection, "test") == {f"{n}/-": e for n, e in chosen.items()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    batch = make_batch(model)
    for _ in range(2):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    for name, param in model.named_parameters():
        moved = (param.detach() - before[name]).flatten(1).abs().amax(1) if groups[name] == "experts" else None
        if moved is None:
            assert torch.equal(param, before[name]), name
            continue
        block = name.split(".core.")[0]
        assert [bool(m > 1e-4) for m in moved] == [e in chosen[block] for e in range(4)], (name, moved)
        assert all(m == 0.0 for e, m in enumerate(moved) if e not in chosen[block]), (name, moved)
