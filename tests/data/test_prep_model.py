"""``mmoe prep --model``: lengths are measured with the model's tokenizer, template and visual tokens."""

from __future__ import annotations

import json

import pytest
import yaml
from PIL import Image

from mmoe.cli import main
from mmoe.config.errors import ConfigError
from mmoe.data.config import parse_prep_config
from mmoe.tokenization.tokenizer import train_bpe_tokenizer

from tests.conftest import CONFIGS

WORDS = "the red square sits beside a small green circle near the blue line".split()


def _long_conversation(root):
    """One record of ~1000 words: 5,000+ bytes (too long for 2048 byte tokens), far fewer BPE tokens."""
    Image.new("RGB", (32, 32), (200, 30, 30)).save(root / "a.png")
    text = " ".join(WORDS[i % len(WORDS)] for i in range(1000))
    record = {"id": "long", "image": "a.png", "conversations": [
        {"from": "human", "value": "<image>\nDescribe the picture."}, {"from": "gpt", "value": text}]}
    (root / "data.json").write_text(json.dumps([record]))
    return root / "data.json"


def _bpe_recipe(tmp_path):
    tokenizer = train_bpe_tokenizer([" ".join(WORDS)] * 50, 400)
    tokenizer.save_pretrained(tmp_path / "bpe")
    recipe = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    recipe["model"]["tokenizer"].update(name=str(tmp_path / "bpe"), max_length=1500)
    recipe["model"]["llm"]["config"]["vocab_size"] = len(tokenizer) + 1
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path / "recipe.yaml"


def _prep(capsys, *args) -> tuple[dict, str]:
    assert main(["prep", "--source", "llava", "--no-progress", "langid.enabled=false", *args]) == 0
    out = capsys.readouterr().out
    return json.loads(out[: out.rindex("}") + 1]), out


def test_model_tokenizer_keeps_a_long_conversation_the_byte_default_rejects(tmp_path, capsys):
    data = _long_conversation(tmp_path)
    default, out = _prep(capsys, "--input", str(data), "--out", str(tmp_path / "bytes"))
    assert default["rejected_by_reason"] == {"too_long": 1}
    assert "tokenizer byte" in out and "no model or tokenizer given" in out

    recipe = _bpe_recipe(tmp_path)
    summary, out = _prep(capsys, "--input", str(data), "--out", str(tmp_path / "bpe-out"), "--model", str(recipe))
    assert summary["kept"] == 1
    manifest = json.loads((tmp_path / "bpe-out" / "manifest.json").read_text())
    assert manifest["tokenizer"]["name"] == str(tmp_path / "bpe") and manifest["tokenizer"]["tokens_per_image"] == 16
    assert manifest["tokenizer"]["from"] == f"model {recipe}"
    assert manifest["tokens"]["max"] < 2048 < len(json.loads(data.read_text())[0]["conversations"][1]["value"])
    assert manifest["config"]["validation"]["max_tokens"] == 1500  # the model's max_length
    assert f"from model {recipe}" in out


def test_saved_model_directory_supplies_its_tokenizer(tmp_path, capsys):
    from mmoe import build_model, save_model
    from mmoe.config import load_config

    model = build_model(load_config(_bpe_recipe(tmp_path)))
    save_model(model, tmp_path / "saved")
    data = _long_conversation(tmp_path)
    summary, _ = _prep(capsys, "--input", str(data), "--out", str(tmp_path / "out"), "--model", str(tmp_path / "saved"))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert summary["kept"] == 1 and manifest["tokenizer"]["name"] == str(tmp_path / "saved" / "tokenizer")
    assert manifest["tokenizer"]["tokens_per_image"] == model.tokens_per_image == 16


def test_model_and_tokenizer_together_is_an_error():
    with pytest.raises(ConfigError, match="set either 'model'.*or 'tokenizer', not both"):
        parse_prep_config({"sources": [{"type": "synthetic"}], "model": "configs/tiny.yaml", "tokenizer": {"name": "byte"}})
