"""``mmoe chat`` / ``mmoe generate``: history, system prompt, images by path, sampling options, streaming, warnings."""

from __future__ import annotations

import io
import re

import pytest
import torch
from transformers import TextStreamer

from mmoe import build_model, save_model
from mmoe.cli import main
from mmoe.config import load_config
from mmoe.errors import MMoEError
from mmoe.model import MMoEProcessor
from mmoe.model.chat import ChatSession, Sampling, with_image_placeholders

from tests.conftest import CONFIGS, solid_image


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat")
    model = build_model(load_config(CONFIGS / "tiny.yaml"))
    save_model(model, root / "model")
    solid_image((200, 30, 30)).save(root / "red.png")
    return root


def _session(model, **sampling) -> ChatSession:
    return ChatSession(model=model, processor=MMoEProcessor.from_model(model), sampling=Sampling(max_new_tokens=12, **sampling),
                       system="Answer in one word.")


def test_second_turn_sees_the_first_and_its_image():
    model = build_model(load_config(CONFIGS / "tiny.yaml")).eval()
    session = _session(model)
    first = session.prompt_batch("What colour?", [solid_image((200, 30, 30))])
    session.ask("What colour?", [solid_image((200, 30, 30))])
    second = session.prompt_batch("And the shape?")
    n = first["input_ids"].shape[1]
    assert torch.equal(second["input_ids"][0, :n], first["input_ids"][0])  # the first prompt, then the reply, then turn 2
    assert second["input_ids"].shape[1] > n + 5 and second["pixel_values"].shape[0] == 1
    text = session.processor.tokenizer.decode(second["input_ids"][0])
    assert text.startswith("<|im_start|>system\nAnswer in one word.<|im_end|>") and "And the shape?" in text
    assert [t.role for t in session.turns] == ["system", "user", "assistant"]
    session.reset()
    assert [t.role for t in session.turns] == ["system"] and session.images == []
    assert torch.equal(session.prompt_batch("What colour?", [solid_image((200, 30, 30))])["input_ids"], first["input_ids"])


def test_top_p_near_zero_is_greedy_and_hot_sampling_is_not():
    model = build_model(load_config(CONFIGS / "tiny.yaml")).eval()
    greedy = _session(model).ask("Say something.")
    torch.manual_seed(0)
    nucleus = _session(model, temperature=1.0, top_p=1e-6).ask("Say something.")
    torch.manual_seed(0)
    hot = _session(model, temperature=5.0, top_p=1.0).ask("Say something.")
    assert nucleus == greedy and hot != greedy


def test_streamer_prints_the_reply_as_generated(capsys):
    model = build_model(load_config(CONFIGS / "tiny.yaml")).eval()
    session = _session(model)
    reply = session.ask("Hello", streamer=TextStreamer(session.processor.tokenizer, skip_prompt=True, skip_special_tokens=True))
    assert capsys.readouterr().out == reply + "\n"


def test_missing_image_placeholders_are_added_in_front_and_extra_ones_refused():
    assert with_image_placeholders("What is it?", 2, "<image>") == "<image>\n<image>\nWhat is it?"
    assert with_image_placeholders("<image>\nWhat is it?", 1, "<image>") == "<image>\nWhat is it?"
    with pytest.raises(MMoEError, match="2 <image> placeholder\\(s\\) but 1 image"):
        with_image_placeholders("<image><image>", 1, "<image>")


def _prompt_tokens(out: str) -> int:
    return int(re.search(r"(\d+) prompt tokens", out).group(1))


def test_generate_adds_the_image_token_and_warns_only_for_recipes(saved, capsys):
    common = ["--max-new-tokens", "4", "--device", "cpu", "--top-p", "0.9", "--temperature", "0.7", "--seed", "3"]
    assert main(["generate", str(saved / "model"), "--prompt", "What colour?", *common]) == 0
    without = capsys.readouterr()
    assert main(["generate", str(saved / "model"), "--prompt", "What colour?", "--image", str(saved / "red.png"), *common]) == 0
    with_image = capsys.readouterr()
    assert _prompt_tokens(with_image.out) - _prompt_tokens(without.out) == 16 + 1  # 16 visual tokens + "\n"
    assert "random" not in without.err + with_image.err
    assert main(["generate", str(CONFIGS / "tiny.yaml"), "--prompt", "Hi", "--max-new-tokens", "2"]) == 0
    assert "is a recipe, not a trained model: the weights it builds are random" in capsys.readouterr().err


def test_chat_reads_turns_and_commands_from_stdin(saved, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(f"/image {saved / 'red.png'}\nWhat colour?\n/reset\nAnd now?\n/quit\n"))
    assert main(["chat", str(saved / "model"), "--max-new-tokens", "3", "--system", "Be brief."]) == 0
    out = capsys.readouterr().out
    assert out.count("assistant> ") == 2
