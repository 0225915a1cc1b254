"""``mmoe export`` / ``mmoe push`` / ``mmoe.load``: HF LLaVA folders that transformers loads as mmoe ran them,
dense LoRA merged, self-contained mmoe folders with a model card, hub ids through the local cache."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

import mmoe
from mmoe import MMoEProcessor, build_model, load_model, save_model
from mmoe.cli import main
from mmoe.config import load_config
from mmoe.tokenization import Turn

from tests.conftest import CONFIGS, solid_image, tiny_with

CONVERSATION = [Turn("user", "<image>\nWhat colour is it?")]


def _saved(tmp_path, model, name="model"):
    save_model(model, tmp_path / name, weights="full")
    return tmp_path / name


def _mmoe_logits(model, turns=CONVERSATION):
    batch = MMoEProcessor.from_model(model).prompts([turns], [[solid_image((200, 30, 30))]])
    with torch.no_grad():
        return batch, model(**batch).logits


def _hf_logits(folder):
    processor = AutoProcessor.from_pretrained(folder)
    hf = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is it?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=text, images=solid_image((200, 30, 30)), return_tensors="pt")
    with torch.no_grad():
        return inputs, hf(**inputs).logits


def test_hf_llava_folder_loads_with_auto_classes_and_keeps_the_template(tmp_path, tiny_cfg):
    model = build_model(tiny_cfg).eval()
    ours_batch, ours = _mmoe_logits(model)
    assert main(["export", str(_saved(tmp_path, model)), "--out", str(tmp_path / "hf")]) == 0
    inputs, theirs = _hf_logits(tmp_path / "hf")
    assert AutoProcessor.from_pretrained(tmp_path / "hf").patch_size == 8
    assert inputs["input_ids"].tolist() == ours_batch["input_ids"].tolist()  # same template, system prompt, 16 image tokens
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-5)


def test_round_trip_through_hf_keeps_the_chatml_system_prompt(tmp_path, tiny_cfg):
    model = build_model(tiny_cfg).eval()
    assert main(["export", str(_saved(tmp_path, model)), "--out", str(tmp_path / "hf")]) == 0
    assert main(["convert", "--from-hf-llava", str(tmp_path / "hf"), "--out", str(tmp_path / "back")]) == 0
    back = load_model(tmp_path / "back")
    before, ours = _mmoe_logits(model)
    after, again = _mmoe_logits(back)
    text = back.tokenizer.decode(after["input_ids"][0])
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")
    assert after["input_ids"].tolist() == before["input_ids"].tolist()
    torch.testing.assert_close(again, ours, rtol=1e-4, atol=1e-5)


def test_dense_lora_is_merged_into_the_exported_weights(tmp_path):
    lora = {"rank": 4, "alpha": 8}
    model = build_model(tiny_with(moe={
        "experts": {"type": "lora", "num_experts": 1, "lora": {**lora, "targets": ["gate_proj", "up_proj", "down_proj"]}},
        "router": {"type": "none"}, "attention_lora": {**lora, "targets": ["q_proj", "v_proj"]},
    })).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)  # trained-looking adapters (B starts at zero)
    _, ours = _mmoe_logits(model)
    _, base_only = _mmoe_logits(build_model(tiny_with()).eval())
    assert (ours - base_only).abs().max() > 1e-2  # the adapters change the output
    assert main(["export", str(_saved(tmp_path, model)), "--out", str(tmp_path / "hf")]) == 0
    _, theirs = _hf_logits(tmp_path / "hf")
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def experts_folder(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("experts")
    prepared = tmp_path / "prepared"
    assert main(["prep", "--source", "synthetic", "--n", "12", "--out", str(prepared), "--no-progress",
                 "--model", str(CONFIGS / "mole.yaml"), "langid.enabled=false"]) == 0
    model = build_model(load_config(CONFIGS / "mole.yaml", [f"data.train=[{prepared}]"])).eval()
    (tmp_path / "eval").mkdir()
    summary = {"mmmb_en": {"overall": 0.5, "language": "en", "mode": "vanilla", "n_questions": 8}}
    (tmp_path / "eval" / "summary.json").write_text(json.dumps(summary))
    assert main(["export", str(_saved(tmp_path, model)), "--out", str(tmp_path / "out"), "--eval", str(tmp_path / "eval")]) == 0
    return model, tmp_path / "out"


def test_model_with_experts_exports_a_self_contained_folder_with_a_card(experts_folder):
    model, folder = experts_folder
    card = (folder / "README.md").read_text()
    assert "mmoe.load" in card and "## Recipe" in card
    assert "library_name: mmoe" in card and "lora experts (all 4), router top_k top-1" in card
    assert "12 records kept of 12 read" in card and "| mmmb_en | en | vanilla | 8 | 50.00% |" in card
    assert json.loads((folder / "weights.json").read_text())["kind"] == "full"
    _, ours = _mmoe_logits(model)
    _, loaded = _mmoe_logits(mmoe.load(folder))
    torch.testing.assert_close(loaded, ours)


def test_hf_llava_is_refused_for_routed_experts(experts_folder, tmp_path, capsys):
    assert main(["export", str(experts_folder[1]), "--out", str(tmp_path / "hf"), "--format", "hf-llava"]) == 2
    assert "routed experts in the LLM (router top_k)" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists()


def test_push_dry_run_writes_exactly_what_would_be_uploaded(experts_folder, tmp_path, capsys):
    import hashlib

    folder = tmp_path / "folder"
    shutil.copytree(experts_folder[1], folder)
    assert main(["push", str(folder), "me/mmoe-tiny", "--dry-run", str(tmp_path / "plan.json")]) == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert plan["repo_id"] == "me/mmoe-tiny" and [f["path"] for f in plan["files"]] == on_disk
    weights = next(f for f in plan["files"] if f["path"] == "model.safetensors")
    assert weights["sha256"] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    (folder / "link").symlink_to("/etc/hostname")
    assert main(["push", str(folder), "me/mmoe-tiny", "--dry-run", str(tmp_path / "plan2.json")]) == 2
    assert "link is a symlink" in capsys.readouterr().err and not (tmp_path / "plan2.json").exists()


def test_load_by_hub_id_reads_the_local_cache(experts_folder, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    model, folder = experts_folder
    entry = tmp_path / "hub" / "models--me--mmoe-tiny"
    commit = "1" * 40
    shutil.copytree(folder, entry / "snapshots" / commit)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    _, ours = _mmoe_logits(model)
    _, loaded = _mmoe_logits(mmoe.load("me/mmoe-tiny"))
    torch.testing.assert_close(loaded, ours)
