"""The routing contract in every generation mode: beams and several returned sequences route each
prompt exactly as greedy decoding does (padding mask and modality ids reach every expanded row)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mmoe.model.parts import parameter_groups
from mmoe.model.processor import MMoEProcessor
from mmoe.moe.core.context import RoutingRecords
from mmoe.tokenization.templates import Turn
from tests.moe.helpers import tiny_model

RECIPES = ["mole", "moma", "parrot"]


def routed_model(name: str):
    """A tiny model whose experts differ enough that routing shows in the logits."""
    torch.manual_seed(0)
    model = tiny_model(name).eval()
    groups = parameter_groups(model)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if groups[param_name] == "experts":
                param.add_(torch.randn_like(param) * 0.2)
    return model


def prompt_batch(model):
    """Two left-padded prompts of different lengths: one with an image, one text-only."""
    processor = MMoEProcessor.from_model(model)
    conversations = [[Turn("user", "<image>\nWhat colour is the square?")], [Turn("user", "Say hello in French, please.")]]
    return processor.prompts(conversations, [[Image.new("RGB", (32, 32), (200, 30, 30))], []])


def first_step(model, batch, **kwargs):
    """First-step logits of every returned row and the prefill's router statistics."""
    records = RoutingRecords()
    out = model.generate(
        **batch, records=records, max_new_tokens=2, return_dict_in_generate=True, output_logits=True, **kwargs
    )
    return out.logits[0], records.router_stats(model._stat_names)


def routed_counts(stats: dict[str, dict[str, torch.Tensor]]) -> dict[str, float]:
    return {f"{module}:{key}": float(value.sum()) for module, s in stats.items() for key, value in s.items() if key.endswith("num_tokens")}


@pytest.mark.parametrize("name", RECIPES)
def test_beam_search_routes_every_beam_like_greedy(name):
    model = routed_model(name)
    batch = prompt_batch(model)
    greedy, greedy_stats = first_step(model, batch, do_sample=False)
    beams, beam_stats = first_step(model, batch, do_sample=False, num_beams=2)
    assert beams.shape[0] == 2 * greedy.shape[0]
    for sample in range(greedy.shape[0]):
        for beam in range(2):
            assert torch.allclose(beams[2 * sample + beam], greedy[sample], atol=1e-5), (sample, beam)
    # the LLM's prefill routed each prompt twice (one copy per beam), every group in proportion;
    # Parrot routes each image once, before generate expands the batch
    want = {key: value * (1 if key.startswith("projector:") else 2) for key, value in routed_counts(greedy_stats).items()}
    assert routed_counts(beam_stats) == want
    assert want  # MoE blocks (or Parrot) did report


def test_beam_prefill_sends_image_tokens_to_the_image_group():
    model = routed_model("moma")
    batch = prompt_batch(model)
    image_tokens = int((batch["input_ids"] == model.image_token_id).sum())
    real = int(batch["attention_mask"].sum())
    _, stats = first_step(model, batch, do_sample=False, num_beams=2)
    for layer in stats.values():
        assert int(layer["image/num_tokens"]) == 2 * image_tokens
        assert int(layer["text/num_tokens"]) == 2 * (real - image_tokens)  # padding never routed


def test_sampling_several_sequences_routes_image_tokens_to_the_image_group():
    torch.manual_seed(0)
    model = tiny_model("moma").eval()
    batch = prompt_batch(model)
    image_tokens = int((batch["input_ids"] == model.image_token_id).sum())
    logits, stats = first_step(model, batch, do_sample=True, top_k=0, num_return_sequences=2)
    assert logits.shape[0] == 4
    for layer in stats.values():
        assert int(layer["image/num_tokens"]) == 2 * image_tokens


def test_no_context_lingers_after_a_forward_or_generate():
    model = tiny_model("moma").eval()
    batch = prompt_batch(model)
    model.generate(**batch, max_new_tokens=2, num_beams=2, do_sample=False)
    model(**batch)
    assert model.moe_blocks() and all(block.routing_context is None for block in model.moe_blocks())
