"""Each expert layer trains on CPU (loss falls in 20 steps) and its parameters survive save/load."""

from __future__ import annotations

import pytest
import torch

from mmoe.model.checkpoint import load_model, save_model
from mmoe.moe.core.layer import MoEBlock
from mmoe.model.parts import parameter_groups
from mmoe.moe.methods.parrot import ParrotProjector
from tests.moe.helpers import SAMPLES, make_batch, tiny_model

RECIPES = ["mole", "moma", "parrot"]


def train(model, batch, steps: int = 20, lr: float = 3e-3) -> list[float]:
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        out = model(**batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.lm_loss.item())
    return losses


@pytest.mark.parametrize("name", RECIPES)
def test_tiny_model_trains_and_loss_falls(name):
    torch.manual_seed(0)
    model = tiny_model(name)
    assert any(isinstance(m, (MoEBlock, ParrotProjector)) for m in model.modules())
    losses = train(model, make_batch(model))
    assert losses[-1] < 0.8 * losses[0] and sum(losses[-5:]) < sum(losses[:5]), losses


def test_moe_parameters_get_gradients_in_the_joint():
    model = tiny_model("mole").train()
    model(**make_batch(model)).loss.backward()
    groups = parameter_groups(model)
    trainable = {groups[n] for n, p in model.named_parameters() if p.requires_grad}
    assert {"routers", "experts"} <= trainable
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad and groups[n] != "vision")
    assert not any(p.requires_grad for n, p in model.named_parameters() if groups[n] == "llm")  # llm.frozen: true


@pytest.mark.parametrize("name", RECIPES)
def test_moe_parameters_round_trip_through_save_and_load(name, tmp_path):
    model = tiny_model(name)
    train(model, make_batch(model), steps=2)
    save_model(model, tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert len(loaded.moe_blocks()) == len(model.moe_blocks())
    mine, theirs = model.state_dict(), loaded.state_dict()
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert torch.equal(mine[key], theirs[key]), key
    model.eval()
    batch = make_batch(model)
    assert torch.allclose(model(**batch).logits, loaded(**batch).logits, atol=1e-6)


@pytest.mark.parametrize("name", ["moma", "parrot"])
def test_text_only_batch_still_touches_every_expert(name):
    """No image in the batch: the image group (MoMa) and Parrot's experts still get (zero) gradients."""
    model = tiny_model(name).train()
    text_only = [s for s in SAMPLES if s[2] is None] * 2
    model(**make_batch(model, text_only)).loss.backward()
    groups = parameter_groups(model)
    moe = [(n, p) for n, p in model.named_parameters() if p.requires_grad and groups[n] in ("experts", "routers", "moe_projector")]
    assert moe and all(p.grad is not None for _, p in moe), [n for n, p in moe if p.grad is None]
