"""MoMa: modality groups keep tokens in their group; expert choice; the aux-router phase."""

from __future__ import annotations

import torch

from mmoe.moe.groups import ModalityGroups
from mmoe.moe.moma import AuxRoutedRouter, aux_router_parameters, set_causal_routing, start_aux_router_phase
from mmoe.moe.routers import ExpertChoiceRouter
from tests.moe.helpers import make_batch, tiny_model

EXPERT_CHOICE = ("model.moe.router.type=expert_choice", "model.moe.router.score=sigmoid", "model.moe.groups.aux_router={}")


def test_each_token_reaches_only_its_modality_group():
    model = tiny_model("moma", "model.moe.groups.text=2", "model.moe.groups.image=3").eval()
    block = model.get_submodule(model.moe_module_names[0])
    assert isinstance(block.core, ModalityGroups) and block.base is None
    seen = {}

    def spy(name):
        def hook(module, args, output):
            seen[name] = args[0].shape[0]
        return hook

    for name, layer in block.core.groups.items():
        layer.register_forward_hook(spy(name))
    batch = make_batch(model)
    model(**batch)
    image_tokens = int((batch["input_ids"] == model.image_token_id).sum())
    assert seen == {"text": int(batch["attention_mask"].sum()) - image_tokens, "image": image_tokens}
    assert block.core.groups["image"].experts.num_experts == 3


def test_expert_choice_capacity_and_sigmoid_weights():
    router = ExpertChoiceRouter(8, 4, capacity_factor=1.0, score="sigmoid")
    out = router(torch.randn(20, 8))
    assert out.plan.mask.sum(0).tolist() == [5, 5, 5, 5]  # ceil(1.0 * 20 / 4) tokens per expert
    assert torch.allclose(out.plan.combine[out.plan.mask], out.logits.sigmoid()[out.plan.mask])


def test_aux_router_phase_trains_only_aux_routers_and_they_take_over_at_inference():
    torch.manual_seed(0)
    model = tiny_model("moma", *EXPERT_CHOICE)
    routers = [m for m in model.modules() if isinstance(m, AuxRoutedRouter)]
    assert len(routers) == 4  # 2 layers x (text, image)
    assert not any(p.requires_grad for p in aux_router_parameters(model))  # frozen during main training
    batch = make_batch(model)
    model.train()
    assert "moma_aux_router_bce" not in model(**batch).aux_losses

    start_aux_router_phase(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in aux_router_parameters(model)}
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if ".aux_router." not in n}
    bce = []
    for _ in range(15):
        out = model(**batch)
        optimizer.zero_grad()
        out.aux_losses["moma_aux_router_bce"].backward()
        optimizer.step()
        bce.append(out.aux_losses["moma_aux_router_bce"].item())
    assert bce[-1] < 0.8 * bce[0], bce
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)

    model.eval()  # auto mode: causal aux-router routing in eval
    layer = model.get_submodule(model.moe_module_names[0]).core.groups["text"]
    x = torch.randn(6, layer.router.main.gate.weight.shape[1])
    out = layer.router(x)
    assert torch.equal(out.plan.mask, layer.router.aux_router(x).sigmoid() > 0.5)
    one = layer.router(x[:1])  # a single decode-step token routes the same as inside the batch
    assert torch.equal(one.plan.mask[0], out.plan.mask[0])
    set_causal_routing(model, "expert_choice")
    assert layer.router(x).plan.mask.sum(0).tolist() == [2, 2, 2, 2]  # ceil(6 / 4)
