"""Interop with Hugging Face LLaVA: imported logits equal HF's; export -> HF load round-trips."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

from mmoe import MMoEProcessor, build_model, load_model, save_model
from mmoe.cli import main
from mmoe.interop.hf_llava import InteropError, export_hf_llava
from mmoe.tokenization import Turn, build_byte_tokenizer

from tests.conftest import solid_image, tiny_with


@pytest.fixture(scope="module")
def hf_llava_dir(tmp_path_factory):
    """A tiny HF LLaVA checkpoint made with transformers (Llama LLM, CLIP tower, byte tokenizer)."""
    out = tmp_path_factory.mktemp("hf_llava")
    tokenizer = build_byte_tokenizer()
    torch.manual_seed(0)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                       num_attention_heads=2, image_size=32, patch_size=8),
        text_config=LlamaConfig(vocab_size=264, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        image_seq_length=16,
    )
    LlavaForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def _inputs(processor):
    images = [[solid_image((250, 10, 10), (48, 32))], [solid_image((10, 10, 250)), solid_image((10, 250, 10))]]
    convs = [[Turn("user", "<image>\nDescribe.")], [Turn("user", "Compare <image> with <image>, 用中文回答")]]
    return processor.prompts(convs, images)


def _hf_logits(hf_dir, batch):
    hf = LlavaForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return hf(**batch).logits


def test_imported_logits_equal_hf(tmp_path, hf_llava_dir):
    assert main(["convert", "--from-hf-llava", str(hf_llava_dir), "--out", str(tmp_path / "mmoe")]) == 0
    model = load_model(tmp_path / "mmoe")
    batch = _inputs(MMoEProcessor.from_model(model))
    with torch.no_grad():
        ours = model(**batch).logits
    theirs = _hf_logits(hf_llava_dir, batch)
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(ours[mask], theirs[mask], rtol=1e-4, atol=1e-5)


def test_export_round_trips_through_hf(tmp_path, hf_llava_dir):
    main(["convert", "--from-hf-llava", str(hf_llava_dir), "--out", str(tmp_path / "mmoe")])
    assert main(["convert", "--to-hf-llava", str(tmp_path / "mmoe"), "--out", str(tmp_path / "back")]) == 0
    model = load_model(tmp_path / "mmoe")
    batch = _inputs(MMoEProcessor.from_model(model))
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(_hf_logits(tmp_path / "back", batch)[mask], _hf_logits(hf_llava_dir, batch)[mask], rtol=1e-4, atol=1e-5)


def test_exported_tiny_default_matches_in_hf(tmp_path, tiny_cfg):
    model = build_model(tiny_cfg).eval()
    export_hf_llava(model, tmp_path)
    batch = _inputs(MMoEProcessor.from_model(model))
    with torch.no_grad():
        ours = model(**batch).logits
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(_hf_logits(tmp_path, batch)[mask], ours[mask], rtol=1e-4, atol=1e-5)


def test_export_refuses_non_hf_vision(tmp_path):
    from tests.test_vision import BACKENDS

    model = build_model(tiny_with(vision=BACKENDS["timm"]))
    with pytest.raises(InteropError, match="vision backend is timm"):
        export_hf_llava(model, tmp_path)


def test_cli_reports_interop_errors_without_traceback(tmp_path, capsys):
    from tests.test_vision import BACKENDS

    save_model(build_model(tiny_with(vision=BACKENDS["open_clip"])), tmp_path / "m")
    assert main(["convert", "--to-hf-llava", str(tmp_path / "m"), "--out", str(tmp_path / "x")]) == 2
    assert "cannot export to HF LLaVA" in capsys.readouterr().err
