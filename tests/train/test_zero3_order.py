"""ZeRO-3 replays one parameter-fetch order, recorded from the modules a step calls, on every rank: a rank
whose text-only batch calls other modules, or the same ones in another order, than a rank with images
hangs the job (issue 10). Fast check without DeepSpeed: for every tiny recipe and stage, the modules
that run forward and backward on a text-only training batch are those of an image batch, in order."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmoe.config import load_config
from mmoe.data.collate import model_inputs
from mmoe.model import build_model
from mmoe.model.processor import MMoEProcessor
from mmoe.train.config import StageConfig
from mmoe.train.stages import apply_stage
from tests.conftest import CONFIGS
from tests.train.toydata import ColourDataset, collate

CASES = {
    "mole": ("mole.yaml", [], ["experts", "routers"]),
    "moma_token_choice": ("moma.yaml", [], ["experts", "routers"]),
    "parrot_projector_only": ("parrot.yaml", [], ["projector"]),
    "parrot_stage1": ("parrot.yaml", ["model.projector.moe.bypass=true"], ["projector"]),
    "parrot_stage2": ("parrot.yaml", [], ["projector", "moe_projector", "llm"]),
}


def module_order(model: nn.Module, batch: dict) -> tuple[list[str], list[str]]:
    """Names of the modules called in the forward, and of those whose backward ran, in order."""
    forward: list[str] = []
    backward: list[str] = []
    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda m, a, name=name: forward.append(name)))
        handles.append(module.register_full_backward_pre_hook(lambda m, g, name=name: backward.append(name)))
    try:
        model(**model_inputs(batch)).loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    return forward, backward


@pytest.mark.filterwarnings("ignore:For backward hooks to be called")  # modules returning non-tensors: no hook, as in ZeRO-3
@pytest.mark.parametrize("case", sorted(CASES))
def test_text_only_batch_calls_the_modules_of_an_image_batch_in_the_same_order(case):
    recipe, overrides, trainable = CASES[case]
    model = build_model(load_config(CONFIGS / recipe, overrides))
    apply_stage(model, StageConfig(name=case, trainable=trainable))
    model.train()
    processor = MMoEProcessor.from_model(model)
    dataset = ColourDataset(processor, 5)
    make = collate(processor)
    with_images = make([dataset[0], dataset[1]])
    text_only = make([dataset[4], dataset[4]])
    assert with_images["pixel_values"].shape[0] == 2 and text_only.get("pixel_values") is None
    torch.manual_seed(0)
    image_order = module_order(model, with_images)
    text_order = module_order(model, text_only)
    assert len(image_order[1]) > 0
    assert text_order[0] == image_order[0]
    assert text_order[1] == image_order[1]
