"""``train.init_groups``: start a model from another's weights for the named parameter groups only, e.g. a
4-expert MoLE from a 1-expert LoRA base whose expert tensors have other shapes."""

from __future__ import annotations

import pytest
import torch

from mmoe import build_model
from mmoe.config import ConfigError, load_config
from mmoe.model.checkpoint import CheckpointError, load_weights, save_model
from mmoe.model.parts import parameter_groups

from tests.conftest import CONFIGS

ONE_EXPERT = ["model.moe.experts.num_experts=1", "model.moe.losses.balance=0.0"]


@pytest.fixture
def base_dir(tmp_path):
    """A saved 1-expert LoRA model whose LLM, projector and expert weights all differ from a fresh build's."""
    base = build_model(load_config(CONFIGS / "mole.yaml", [*ONE_EXPERT, "model.seed=7"]))
    with torch.no_grad():
        for p in base.parameters():
            p.add_(0.5)
    return save_model(base, tmp_path / "base", weights="full"), base


def test_groups_load_the_llm_of_a_base_whose_experts_do_not_fit(base_dir):
    directory, base = base_dir
    mole = build_model(load_config(CONFIGS / "mole.yaml"))
    groups = parameter_groups(mole)
    fresh = {k: v.clone() for k, v in mole.state_dict().items()}
    with pytest.raises(CheckpointError, match="misshapen .*lora_A"):
        load_weights(mole, directory)  # every group: 1 expert's tensors into 4 experts'
    missing = load_weights(mole, directory, ["llm", "projector"])
    source, loaded = base.state_dict(), mole.state_dict()
    assert {groups[k] for k in missing} == {"vision", "experts", "routers"}
    for name, group in groups.items():
        expected = source[name] if group in ("llm", "projector") else fresh[name]
        assert torch.equal(loaded[name], expected), name
    # embeddings, lm_head, final norm and 12 per layer (attention, norms, the base MLP under the MoE block)
    assert sum(group == "llm" for group in groups.values()) == 3 + 2 * 12


def test_a_group_the_checkpoint_lacks_is_named(tmp_path):
    tiny = build_model(load_config(CONFIGS / "tiny.yaml"))
    directory = save_model(tiny, tmp_path / "dense", weights="full")
    mole = build_model(load_config(CONFIGS / "mole.yaml"))
    with pytest.raises(CheckpointError, match=r"holds no tensor of group\(s\) \['experts'\]"):
        load_weights(mole, directory, ["experts"])


def test_init_groups_is_typed_and_needs_init_from():
    with pytest.raises(ConfigError, match="init_groups"):
        load_config(CONFIGS / "mole.yaml", ["train.init_groups=[llm]"])
    with pytest.raises(ConfigError, match="init_groups"):
        load_config(CONFIGS / "mole.yaml", ["train.init_from=x", "train.init_groups=[language_model]"])
    cfg = load_config(CONFIGS / "mole.yaml", ["train.init_from=x", "train.init_groups=[llm,projector]"])
    assert cfg.train.init_groups == ["llm", "projector"]
