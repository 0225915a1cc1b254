"""Router Lens counts and selection (against numbers from the released code), the selection file,
and CEFT's per-expert gradient masking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmoe.config.errors import ConfigError
from mmoe.model.parts import parameter_groups
from mmoe.moe.core.routers import TopKRouter
from mmoe.moe.core.stats import RouterStats
from mmoe.moe.methods.ceft import train_selected_experts
from mmoe.moe.methods.router_lens import ExpertSelection, GroupSelection, read_selection, select_experts
from mmoe.train.method_configs import RouterLensConfig
from mmoe.train.router_lens import lens_selection
from tests.moe.helpers import make_batch, recipe, tiny_model

# Produced once by bigai-nlco/RouterLens@1c18cc756be028a7e55a51fd7b51a2b211baa0c9 (expert_act_count and
# get_target_module, see the file's "source"); counts and ties (lower expert id first) as that code gives.
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "router_lens_selection.json").read_text())


def test_counts_and_selection_match_the_released_router_lens_code():
    num_experts = len(FIXTURE["counts"][0])
    router = TopKRouter(num_experts, num_experts, top_k=FIXTURE["top_k"])
    with torch.no_grad():
        router.gate.weight.copy_(torch.eye(num_experts))  # the gate passes the stored router logits through
    per_layer = [RouterStats() for _ in FIXTURE["counts"]]
    for sample in FIXTURE["router_logits"]:
        for stats, logits in zip(per_layer, sample):
            stats.add(router(torch.tensor(logits)), num_experts)
    counts = [stats.pop()["tokens_per_expert"].tolist() for stats in per_layer]
    assert counts == FIXTURE["counts"]
    assert [select_experts(c, FIXTURE["ceft_k"]) for c in counts] == FIXTURE["selected"]


def test_lens_selects_per_language_and_per_modality_group_from_the_router_statistics():
    model = tiny_model("moma")
    counts = {name: {
        "text/tokens_per_expert": torch.tensor([1.0, 9.0, 5.0, 5.0]),
        "text/tokens_per_expert/pt": torch.tensor([7.0, 0.0, 2.0, 8.0]),
        "image/tokens_per_expert": torch.tensor([0.0, 3.0, 6.0, 1.0]),
        "image/tokens_per_expert/pt": torch.tensor([4.0, 4.0, 0.0, 1.0]),
    } for name in ("llm.model.layers.0.mlp", "llm.model.layers.1.mlp")}
    by_language = lens_selection(RouterLensConfig(top_experts=2, property="language", language="pt"), model, counts)
    block = by_language.blocks["llm.model.layers.1.mlp"]
    assert (block["text"].experts, block["image"].experts) == ([3, 0], [0, 1])
    image = lens_selection(RouterLensConfig(top_experts=1, property="modality", modality="image"), model, counts)
    assert image.blocks["llm.model.layers.0.mlp"]["image"].experts == [2]
    assert image.blocks["llm.model.layers.0.mlp"]["text"].experts == []


def test_router_lens_config_refuses_what_cannot_select_anything():
    with pytest.raises(ConfigError, match="soft routing activates every expert"):
        recipe("methods/router_lens", "model.moe.router.type=soft")
    with pytest.raises(ConfigError, match="property=modality selects inside MoMa"):
        recipe("methods/router_lens", "train.router_lens.property=modality", "train.router_lens.modality=image")
    with pytest.raises(ConfigError, match="top_experts=5 exceeds the 4 experts"):
        recipe("methods/router_lens", "train.router_lens.top_experts=5")
    with pytest.raises(ConfigError, match="trains only the routers"):
        recipe("methods/router_lens", "train.stage.trainable=[routers,experts]")


def test_ceft_config_refuses_weight_decay_and_dense_adapters():
    with pytest.raises(ConfigError, match="weight decay"):
        recipe("methods/ceft", "train.weight_decay=0.1")
    with pytest.raises(ConfigError, match="attention_lora"):
        recipe("methods/ceft", "model.moe.attention_lora={rank: 4}")
    with pytest.raises(ConfigError, match="add 'experts'"):
        recipe("methods/ceft", "train.stage.trainable=[projector]")


def _selection(model, chosen: dict[str, list[int]]) -> ExpertSelection:
    blocks = {name: {"-": GroupSelection(num_experts=4, counts=[0.0] * 4, experts=experts)} for name, experts in chosen.items()}
    return ExpertSelection(property="all", statistic="tokens_per_expert", top_experts=2, blocks=blocks)


def test_selection_file_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "sel.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="sel.json: not valid JSON"):
        read_selection(path)
    path.write_text(json.dumps({"property": "all", "statistic": "s", "top_experts": 2,
                                "blocks": {"b": {"-": {"num_experts": 4, "counts": [0, 0, 0, 0], "experts": [1, 4]}}}}))
    with pytest.raises(ConfigError, match=r"blocks.b.-.experts must be distinct ids in \[0, 4\)"):
        read_selection(path)
    path.write_text(json.dumps({"property": "all", "statistic": "s", "top_experts": 2, "blocks": {"b": {"-": {"counts": []}}}}))
    with pytest.raises(ConfigError, match="key 'blocks.b.-.num_experts'"):
        read_selection(path)
    model = tiny_model("methods/ceft")
    with pytest.raises(ConfigError, match="this model's are"):
        train_selected_experts(model, _selection(model, {"llm.model.layers.0.mlp": [0]}), "sel.json")


def test_ceft_masks_each_unselected_expert_slice_of_the_stacked_weights():
    model = tiny_model("methods/ceft").train()
    chosen = {"llm.model.layers.0.mlp": [1, 3], "llm.model.layers.1.mlp": [2]}
    groups = parameter_groups(model)
    for name, param in model.named_parameters():
        param.requires_grad_(groups[name] == "experts")
    train_selected_experts(model, _selection(model, chosen), "test")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    batch = make_batch(model)
    for _ in range(3):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    for block_name, experts in chosen.items():
        bank = dict(model.named_modules())[f"{block_name}.core.experts"]
        for param in bank.expert_parameters():
            name = next(n for n, p in model.named_parameters() if p is param)
            moved = (param.detach() - before[name]).flatten(1).abs().amax(1)
            for e in range(4):
                if e in experts:
                    assert moved[e] > 1e-4, (name, e)
                else:
                    assert moved[e] == 0.0, (name, e)
