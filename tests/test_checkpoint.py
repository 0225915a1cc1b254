"""Save/load round trips (every backend, full and trainable-only) and clear errors for broken dirs."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, Qwen2Config

from mmoe import MMoEProcessor, build_model, load_model, save_model
from mmoe.model.checkpoint import CheckpointError
from mmoe.tokenization import Turn

from tests.conftest import solid_image, tiny_with
from tests.test_vision import BACKENDS


def _logits(model):
    processor = MMoEProcessor.from_model(model)
    batch = processor.prompts([[Turn("user", "<image>\nWhat colour? Ответ по-русски.")]], [[solid_image((9, 120, 40), (50, 30))]])
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("kind", ["hf-clip", "timm", "open_clip"])
def test_full_save_load_equality(tmp_path, kind):
    vision = {**BACKENDS[kind], "select_layer": -2}
    model = build_model(tiny_with(vision=vision)).eval()
    save_model(model, tmp_path)
    assert json.loads((tmp_path / "weights.json").read_text()) == {"kind": "full"}
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    loaded = load_model(tmp_path)
    torch.testing.assert_close(_logits(loaded), _logits(model), rtol=0, atol=0)
    assert loaded.config == model.config


def test_trainable_only_save_reloads_base_from_local_paths(tmp_path):
    llm_dir, vision_dir, out = tmp_path / "llm", tmp_path / "vision", tmp_path / "out"
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(Qwen2Config(vocab_size=264, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                                 num_attention_heads=4, num_key_value_heads=2)).save_pretrained(llm_dir)
    CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                     image_size=32, patch_size=8)).save_pretrained(vision_dir)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(vision_dir)
    cfg = tiny_with(vision={"backend": "hf", "name": str(vision_dir)}, llm={"name": str(llm_dir), "frozen": True})
    model = build_model(cfg).eval()
    with torch.no_grad():
        for p in model.projector.parameters():
            p.add_(0.5)
    save_model(model, out)
    assert json.loads((out / "weights.json").read_text()) == {"kind": "trainable"}
    loaded = load_model(out)
    torch.testing.assert_close(_logits(loaded), _logits(model), rtol=0, atol=0)


@pytest.mark.parametrize("missing", ["model.safetensors", "mmoe_config.yaml", "tokenizer", "llm_config.json"])
def test_missing_files_are_named(tmp_path, tiny_cfg, missing):
    save_model(build_model(tiny_cfg), tmp_path)
    target = tmp_path / missing
    if target.is_dir():
        for f in target.iterdir():
            f.unlink()
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(CheckpointError, match=missing):
        load_model(tmp_path)


def test_weights_that_do_not_fit_are_named(tmp_path, tiny_cfg):
    from safetensors.torch import load_file, save_file

    save_model(build_model(tiny_cfg), tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state.pop("projector.layers.0.weight")
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="projector.layers.0.weight"):
        load_model(tmp_path)


def test_not_a_directory(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "absent")
