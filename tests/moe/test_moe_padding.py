"""Padding never reaches a router, a loss or a statistic: extra pad columns change nothing."""

from __future__ import annotations

import pytest
import torch

from tests.moe.helpers import make_batch, tiny_model

RECIPES = [
    ("mole", ()),
    ("moma", ()),
    ("moma", ("model.moe.router.type=expert_choice", "model.moe.router.score=sigmoid", "model.moe.groups.aux_router={}")),
    ("parrot", ()),
    ("mole", ("model.moe.experts.num_null_experts=2", "model.moe.router.top_k=2", "model.moe.losses.z_loss=0.01")),
]


@pytest.mark.parametrize("name,overrides", RECIPES)
def test_extra_padding_changes_no_output_loss_or_statistic(name, overrides):
    model = tiny_model(name, *overrides).train()  # train mode: expert-choice routing, jitter-free recipes
    tight = make_batch(model)
    padded = make_batch(model, extra_pad=7)
    a, b = model(**tight), model(**padded)
    real = tight["attention_mask"].bool()
    width = real.shape[1]
    assert torch.allclose(a.logits[real], b.logits[:, :width][real], atol=1e-5)
    assert torch.allclose(a.loss, b.loss, atol=1e-6)
    assert a.aux_losses.keys() == b.aux_losses.keys()
    for key in a.aux_losses:
        assert torch.allclose(a.aux_losses[key], b.aux_losses[key], atol=1e-6), key
    assert a.router_stats.keys() == b.router_stats.keys() and a.router_stats
    for module, stats in a.router_stats.items():
        assert stats.keys() == b.router_stats[module].keys()
        for key, value in stats.items():
            assert torch.allclose(value, b.router_stats[module][key], atol=1e-5), (module, key)


def test_statistics_count_only_real_tokens_per_modality():
    model = tiny_model("moma").eval()
    batch = make_batch(model, extra_pad=5)
    out = model(**batch)
    image_tokens = int((batch["input_ids"] == model.image_token_id).sum())
    real_tokens = int(batch["attention_mask"].sum())
    for stats in out.router_stats.values():
        assert int(stats["image/num_tokens"]) == image_tokens
        assert int(stats["text/num_tokens"]) == real_tokens - image_tokens
        assert int(stats["image/tokens_per_expert"].sum()) == image_tokens  # top-1: one assignment per token


def test_routers_see_token_info_of_real_tokens_only():
    from mmoe.moe.core.context import RoutingContext, RoutingRecords
    from mmoe.moe.core.dispatch import GroupedDispatch
    from mmoe.moe.core.experts import FFNExperts
    from mmoe.moe.core.layer import MoEBlock, MoELayer
    from mmoe.moe.core.routers import TopKRouter

    seen = []

    class Spy(TopKRouter):
        def forward(self, x, tokens=None):
            seen.append(tokens)
            return super().forward(x, tokens)

    block = MoEBlock(core=MoELayer(router=Spy(8, 2, top_k=1), experts=FFNExperts(num_experts=2, hidden=8, intermediate=16), dispatch=GroupedDispatch()))
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    records = RoutingRecords()
    block.routing_context = RoutingContext(
        mask, torch.tensor([[0, 1, 0, 0], [1, 0, 0, 0]]), torch.tensor([[3, 3, 3, 0], [5, 5, 0, 0]]), "forward", records
    )
    block(torch.randn(2, 4, 8))
    info = seen[0]
    assert info.sequence.tolist() == [0, 0, 0, 1, 1] and info.position.tolist() == [0, 1, 2, 0, 1]
    assert info.modality.tolist() == [0, 1, 0, 1, 0] and info.language.tolist() == [3, 3, 3, 5, 5]
    assert records.router_stats({block: "b"})["b"]["num_tokens"] == 5
