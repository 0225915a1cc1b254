"""MoMa: modality groups keep tokens in their group; expert choice; the aux-router phase; inference guards."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from mmoe.config.errors import ConfigError
from mmoe.model.checkpoint import load_model, save_model
from mmoe.model.parts import parameter_groups
from mmoe.moe.core.routers import ExpertChoiceInferenceError, ExpertChoiceRouter
from mmoe.moe.methods.moma import AuxRoutedRouter, ModalityGroups
from mmoe.train.config import StageConfig
from mmoe.train.stages import apply_stage
from tests.moe.helpers import make_batch, tiny_model

EXPERT_CHOICE = ("model.moe.router.type=expert_choice", "model.moe.router.score=sigmoid", "model.moe.groups.aux_router={}")


def test_each_token_reaches_only_its_modality_group():
    model = tiny_model("moma", "model.moe.groups.text=2", "model.moe.groups.image=3").eval()
    block = model.moe_blocks()[0]
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


def test_expert_choice_refuses_inference_unless_a_causal_fallback_is_chosen():
    router = ExpertChoiceRouter(8, 4, capacity_factor=1.0, score="sigmoid").eval()
    with pytest.raises(ExpertChoiceInferenceError, match="aux-router phase|aux routers") as err:
        router(torch.randn(6, 8))
    assert isinstance(err.value, ConfigError) and "causal_fallback" in str(err.value)
    router.causal_fallback = True
    x = torch.randn(6, 8)
    out = router(x)
    assert out.plan.mask.sum(-1).tolist() == [1] * 6  # round(capacity_factor) = 1 expert per token
    assert torch.equal(router(x[:1]).plan.mask[0], out.plan.mask[0])  # causal: a token routes alone as in the batch


def test_expert_choice_model_without_aux_routers_refuses_generation_naming_the_phase():
    model = tiny_model("moma", "model.moe.router.type=expert_choice", "model.moe.router.score=sigmoid").eval()
    with pytest.raises(ExpertChoiceInferenceError, match="moma_aux_routers.yaml"):
        model(**make_batch(model))


def test_aux_router_phase_trains_only_aux_routers_and_they_take_over_at_inference():
    torch.manual_seed(0)
    model = tiny_model("moma", *EXPERT_CHOICE)
    routers = [m for m in model.modules() if isinstance(m, AuxRoutedRouter)]
    assert len(routers) == 4  # 2 layers x (text, image)
    groups = parameter_groups(model)
    aux = [n for n, g in groups.items() if g == "aux_routers"]
    assert aux and not any(p.requires_grad for n, p in model.named_parameters() if n in aux)  # built frozen
    batch = make_batch(model)
    model.train()
    assert "moma_aux_router_bce" not in model(**batch).aux_losses
    model.eval()
    with pytest.raises(ExpertChoiceInferenceError, match="never trained"):  # untrained aux routers are refused
        model(**batch)

    model.train()
    apply_stage(model, StageConfig(name="aux", trainable=["aux_routers"]))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for n, p in model.named_parameters() if n in aux}
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n not in aux}
    bce = []
    for _ in range(15):
        out = model(**batch)
        optimizer.zero_grad()
        out.aux_losses["moma_aux_router_bce"].backward()
        optimizer.step()
        bce.append(out.aux_losses["moma_aux_router_bce"].item())
    assert bce[-1] < 0.8 * bce[0], bce
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)
    assert all(bool(r.aux_router.trained) for r in routers)

    model.eval()  # the trained aux routers route causally
    layer = model.moe_blocks()[0].core.groups["text"]
    x = torch.randn(6, layer.router.main.gate.weight.shape[1])
    out = layer.router(x)
    assert torch.equal(out.plan.mask, layer.router.aux_router(x).sigmoid() > 0.5)
    one = layer.router(x[:1])  # a single decode-step token routes the same as inside the batch
    assert torch.equal(one.plan.mask[0], out.plan.mask[0])


def test_a_checkpoint_records_that_its_aux_routers_were_trained(tmp_path):
    torch.manual_seed(0)
    model = tiny_model("moma", *EXPERT_CHOICE).train()
    batch = make_batch(model)
    save_model(model, tmp_path / "untrained")
    with pytest.raises(ExpertChoiceInferenceError, match="never trained"):
        load_model(tmp_path / "untrained")(**batch)
    apply_stage(model, StageConfig(name="aux", trainable=["aux_routers"]))
    model(**batch).aux_losses["moma_aux_router_bce"].backward()
    save_model(model, tmp_path / "trained", weights="trainable")
    saved = load_file(str(tmp_path / "trained" / "model.safetensors"))
    flags = [key for key in saved if key.endswith("aux_router.trained")]
    assert len(flags) == 4 and all(bool(saved[key]) for key in flags)  # kept with the trainable aux routers
    save_model(model, tmp_path / "full", weights="full")
    loaded = load_model(tmp_path / "full")
    assert torch.allclose(loaded(**batch).logits, model.eval()(**batch).logits, atol=1e-6)
