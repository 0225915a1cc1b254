"""ZeRO-3 replays one parameter-fetch order, recorded from the modules a step calls, on every rank: a rank
whose text-only batch calls other modules, or the same ones in another order, than a rank with images
hangs the job (issue 10). Fast checks without DeepSpeed: for every tiny recipe and stage, the modules
that run forward and backward on a text-only training batch are those of an image batch, in order; and
every module that owns parameters returns tensors in structures ZeRO-3 can see into."""

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
    "adamoe": ("methods/adamoe.yaml", [], ["experts", "routers"]),
    "factorllm": ("methods/factorllm.yaml", [], ["experts", "routers"]),
    "perft": ("methods/perft.yaml", [], ["experts", "routers"]),
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


def _visible(value) -> bool:
    """What ZeRO-3 can hook (``apply_to_tensors_only``): tensors, inside tuples, lists and dicts; builtins."""
    if isinstance(value, (tuple, list)):
        return all(_visible(v) for v in value)
    if isinstance(value, dict):
        return all(_visible(v) for v in value.values())
    return isinstance(value, torch.Tensor) or type(value).__module__ == "builtins"


@pytest.mark.parametrize("case", ["mole", "moma_token_choice", "parrot_stage2"])
def test_modules_that_own_parameters_return_what_zero3_can_see(case):
    """ZeRO-3 re-gathers a module's own parameters in backward only when a gradient reaches one of the
    tensors it can find in the module's output; an opaque output structure would leave them released."""
    recipe, overrides, trainable = CASES[case]
    model = build_model(load_config(CONFIGS / recipe, overrides))
    model.train()
    owners = {name: module for name, module in model.named_modules() if any(True for _ in module.parameters(recurse=False))}
    opaque: dict[str, str] = {}
    handles = [
        module.register_forward_hook(lambda m, a, out, name=name: None if _visible(out) else opaque.setdefault(name, type(out).__name__))
        for name, module in owners.items()
    ]
    processor = MMoEProcessor.from_model(model)
    dataset = ColourDataset(processor, 5)
    try:
        model(**model_inputs(collate(processor)([dataset[0], dataset[4]])))
    finally:
        for handle in handles:
            handle.remove()
    assert len(owners) > 20
    assert opaque == {}
