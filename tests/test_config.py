"""Recipes validate; bad keys and values fail naming the key, the closest valid one and the value."""

from __future__ import annotations

import pytest

from mmoe.config import ConfigError, apply_overrides, load_config, parse_config

from tests.conftest import CONFIGS, ROOT


def _shipped_recipes():
    return sorted(CONFIGS.glob("**/*.yaml"))


@pytest.mark.parametrize("path", _shipped_recipes(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_recipe_validates(path):
    cfg = load_config(path)
    assert cfg.model.llm.name or cfg.model.llm.config


def test_misspelled_key_names_key_and_closest_valid_one(tiny_cfg):
    raw = tiny_cfg.model_dump(mode="json")
    raw["model"]["visoin"] = raw["model"].pop("vision")
    with pytest.raises(ConfigError) as err:
        parse_config(raw, source="bad.yaml")
    message = str(err.value)
    assert "unknown key 'model.visoin'" in message
    assert "did you mean 'vision'?" in message
    assert "bad.yaml" in message


def test_wrong_type_names_field_and_value(tiny_cfg):
    raw = apply_overrides(tiny_cfg.model_dump(mode="json"), ["model.vision.select_layer=minus-two"])
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert "field 'model.vision.select_layer'" in str(err.value)
    assert "'minus-two'" in str(err.value)


def test_wrong_choice_lists_field(tiny_cfg):
    with pytest.raises(ConfigError, match="model.projector.type"):
        parse_config(apply_overrides(tiny_cfg.model_dump(mode="json"), ["model.projector.type=mlp9x"]))


def test_overrides_are_typed_and_nested():
    cfg = load_config(CONFIGS / "tiny.yaml", ["model.llm.config.num_hidden_layers=3", "model.vision.frozen=false"])
    assert cfg.model.llm.config["num_hidden_layers"] == 3
    assert cfg.model.vision.frozen is False


def test_override_into_a_value_is_an_error():
    with pytest.raises(ConfigError, match="'model.seed' is a value"):
        load_config(CONFIGS / "tiny.yaml", ["model.seed.x=1"])


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(CONFIGS / "tiny.yaml", ["model.seed"])


def test_llm_needs_exactly_one_source(tiny_cfg):
    raw = tiny_cfg.model_dump(mode="json")
    raw["model"]["llm"]["name"] = "Qwen/Qwen2-7B"
    with pytest.raises(ConfigError, match="exactly one of 'name'"):
        parse_config(raw)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_include_merges_over_the_included_recipe(tmp_path):
    (tmp_path / "base.yaml").write_text((CONFIGS / "tiny.yaml").read_text())
    (tmp_path / "stage.yaml").write_text(
        "include: base.yaml\nmodel:\n  llm:\n    config:\n      num_hidden_layers: 5\ntrain:\n  max_steps: 7\n"
    )
    cfg = load_config(tmp_path / "stage.yaml")
    assert cfg.model.llm.config["num_hidden_layers"] == 5
    assert cfg.model.llm.config["hidden_size"] == 128
    assert cfg.train.max_steps == 7


def test_include_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(ConfigError, match="include cycle"):
        load_config(tmp_path / "a.yaml")
