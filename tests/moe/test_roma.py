"""RoMA: its formulas on hand-computed cases, the per-sample routing record, the config rules."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from mmoe.config.errors import ConfigError
from mmoe.moe.core.context import SampleRouting
from mmoe.moe.methods.roma import knn_graph, last_prompt_positions, manifold_loss, routing_vectors
from mmoe.train.method_configs import RoMAConfig
from mmoe.train.roma import answer_scores, pooled_prompt_states, sentence_transformer
from tests.moe.helpers import make_batch, recipe, tiny_model

IGNORE = -100


def test_last_prompt_position_is_the_token_before_the_first_answer_label():
    labels = torch.tensor([[IGNORE, IGNORE, IGNORE, 7, 8, IGNORE], [IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, IGNORE]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])
    assert last_prompt_positions(mask, labels).tolist() == [2, 3]  # unsupervised row: its last real token


def test_knn_graph_takes_the_nearest_successful_others_with_gaussian_weights():
    emb = torch.tensor([[0.0], [1.0], [2.0], [4.5]])
    successful = torch.tensor([True, True, False, True])
    graph = knn_graph(emb, successful, k=2, sigma=1.0)
    # sample 2 is not successful: nobody's neighbour, but it has neighbours itself
    assert graph.index.tolist() == [[1, 3], [0, 3], [1, 0], [1, 0]]

    def w(*d2):
        sims = [math.exp(-x / 2) for x in d2]
        return [s / sum(sims) for s in sims]

    expected = [w(1, 20.25), w(1, 12.25), w(1, 4), w(12.25, 20.25)]
    assert torch.allclose(graph.weight, torch.tensor(expected), atol=1e-7)


def test_knn_graph_pads_short_rows_and_defaults_sigma_to_the_median_neighbour_distance():
    emb = torch.tensor([[0.0], [1.0], [3.0]])
    graph = knn_graph(emb, torch.tensor([True, True, False]), k=3)
    assert graph.index.tolist() == [[1, -1, -1], [0, -1, -1], [1, 0, -1]]
    assert graph.weight[0].tolist() == [1.0, 0.0, 0.0]
    sigma = 1.0  # neighbour distances 1, 1, 2, 3: torch.median takes the lower middle, 1
    sims = [math.exp(-4 / (2 * sigma**2)), math.exp(-9 / (2 * sigma**2))]
    assert torch.allclose(graph.weight[2], torch.tensor([sims[0] / sum(sims), sims[1] / sum(sims), 0.0]), atol=1e-7)
    lonely = knn_graph(emb, torch.tensor([True, False, False]), k=2)
    assert lonely.index[0].tolist() == [-1, -1] and lonely.weight[0].tolist() == [0.0, 0.0]


def test_manifold_loss_and_its_gradient_by_hand():
    routing = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    neighbours = torch.tensor([[[0.5, 0.5], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    weight = torch.tensor([[0.75, 0.25], [0.0, 0.0]])  # sample 1 has no neighbour: left out of the mean
    loss = manifold_loss(routing, neighbours, weight)
    assert loss.item() == pytest.approx(0.75 * 0.5 + 0.25 * 2.0)
    loss.backward()
    assert torch.allclose(routing.grad, torch.tensor([[1.25, -1.25], [0.0, 0.0]]))
    empty = manifold_loss(routing, neighbours, torch.zeros(2, 2))
    assert empty.item() == 0.0 and empty.requires_grad


def test_routing_vectors_concatenate_the_last_blocks_with_one_slot_per_group():
    a = SampleRouting(torch.tensor([1, 0]), torch.tensor([[0.1, 0.9], [0.2, 0.8]]))
    text = SampleRouting(torch.tensor([0]), torch.tensor([[0.3, 0.7]]))
    image = SampleRouting(torch.tensor([1]), torch.tensor([[0.6, 0.4]]))
    first = SampleRouting(torch.tensor([0, 1]), torch.tensor([[9.0, 9.0], [9.0, 9.0]]))
    records = {"b0": {"": first}, "b1": {"": a}, "b2": {"text": text, "image": image}}
    vectors = routing_vectors(records, batch=2, layers=2)
    assert torch.equal(vectors, torch.tensor([[0.2, 0.8, 0.3, 0.7, 0.0, 0.0], [0.1, 0.9, 0.0, 0.0, 0.6, 0.4]]))
    with pytest.raises(ValueError, match=r"block b1: samples \[2\]"):
        routing_vectors({"b1": {"": a}}, batch=3, layers=5)


def test_answer_scores_are_the_answer_loss_and_the_exact_greedy_answer():
    logits = torch.full((2, 3, 4), -10.0)
    logits[:, 0, 2] = 10.0  # position 0 predicts token 2
    logits[0, 1, 3] = 10.0  # sample 0 predicts 3 at position 1; sample 1 predicts 0
    logits[1, 1, 0] = 10.0
    labels = torch.tensor([[IGNORE, 2, 3], [IGNORE, 2, 3]])
    loss, exact = answer_scores(logits, labels)
    assert exact.tolist() == [True, False]
    assert loss[0].item() == pytest.approx(0.0, abs=1e-6)
    assert loss[1].item() == pytest.approx(20.0 / 2, rel=1e-4)  # one wrong token of two, CE = 20
    _, none = answer_scores(logits, torch.full((2, 3), IGNORE))
    assert none.tolist() == [False, False]


def test_pooled_prompt_states_average_only_the_prompt_tokens():
    hidden = torch.arange(12.0).view(1, 4, 3)
    mask = torch.tensor([[True, False, True, False]])
    assert pooled_prompt_states(hidden, mask).tolist() == [[3.0, 4.0, 5.0]]


def test_the_model_returns_each_routers_distribution_at_the_announced_positions():
    model = tiny_model("methods/roma").train()
    samples = [("Say one.", "One.", None), ("Say two.", "Two.", None)]  # equal lengths: no padding
    batch = make_batch(model, samples)
    assert bool(batch["attention_mask"].all())
    length = batch["input_ids"].shape[1]
    seen = []
    for block in model.moe_blocks():
        block.core.router.gate.register_forward_hook(lambda mod, args, out: seen.append(out.detach()))
    positions = torch.tensor([3, 5])
    out = model(**batch, routing_positions=positions)
    assert list(out.sample_routing) == ["llm.model.layers.0.mlp", "llm.model.layers.1.mlp"]
    for logits, groups in zip(seen, out.sample_routing.values()):
        recorded = groups[""]
        assert recorded.sequences.tolist() == [0, 1]
        expected = logits[[0 * length + 3, 1 * length + 5]].softmax(-1)
        assert torch.allclose(recorded.weights, expected, atol=1e-6)
    vectors = routing_vectors(out.sample_routing, batch=2, layers=5)
    vectors.square().sum().backward()  # (a plain sum of distributions is constant)
    assert model.moe_blocks()[0].core.router.gate.weight.grad.abs().sum() > 0
    assert model(**batch).sample_routing == {}  # nothing recorded unless asked


def test_roma_config_rules_name_the_keys():
    with pytest.raises(ConfigError, match="train.stage.trainable=\\[routers\\]"):
        recipe("methods/roma", "train.stage.trainable=[routers,experts]")
    with pytest.raises(ConfigError, match="no routed MoE"):
        recipe("methods/roma", "model.moe=null")
    with pytest.raises(ValueError, match="embedding_model"):
        RoMAConfig(embedding="sentence_transformers")


def test_sentence_transformers_embedding_without_the_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # the import fails as if not installed
    with pytest.raises(ConfigError, match="needs the sentence-transformers package"):
        sentence_transformer("sentence-transformers/all-MiniLM-L6-v2")
