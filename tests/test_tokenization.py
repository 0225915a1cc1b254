"""The byte tokenizer covers every script; templates put supervision exactly on assistant replies."""

from __future__ import annotations

import pytest

from mmoe.model.processor import MMoEProcessor
from mmoe.model.splice import IGNORE_INDEX
from mmoe.tokenization import Turn, build_byte_tokenizer, render_conversation
from mmoe.tokenization.templates import ConversationError

SIX = {
    "en": "What colour is the circle?",
    "zh": "圆形是什么颜色？",
    "pt": "De que cor é o círculo?",
    "ar": "ما لون الدائرة؟",
    "tr": "Dairenin rengi ne?",
    "ru": "Какого цвета круг?",
}


@pytest.mark.parametrize("lang", list(SIX))
def test_byte_tokenizer_round_trips_six_languages(lang):
    tok = build_byte_tokenizer()
    ids = tok(SIX[lang], add_special_tokens=False)["input_ids"]
    assert len(ids) == len(SIX[lang].encode("utf-8"))
    assert tok.decode(ids) == SIX[lang]


def test_byte_tokenizer_keeps_specials_atomic_and_saves(tmp_path):
    from transformers import AutoTokenizer

    tok = build_byte_tokenizer()
    ids = tok("<|im_start|>user\n<image>\nhi<|im_end|>", add_special_tokens=False)["input_ids"]
    assert tok.convert_tokens_to_ids("<image>") in ids and len(ids) == 1 + 5 + 1 + 1 + 2 + 1
    tok.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)(SIX["ar"], add_special_tokens=False)["input_ids"] == tok(SIX["ar"], add_special_tokens=False)["input_ids"]


CONV = [Turn("user", "<image>\nColour?"), Turn("assistant", "Vermelho."), Turn("user", "Shape?"), Turn("assistant", "圆形")]


@pytest.mark.parametrize("template,expected", [
    ("chatml", ["Vermelho.<|im_end|>\n", "圆形<|im_end|>\n"]),
    ("llava_v1", [" Vermelho.<|im_end|>", " 圆形<|im_end|>"]),
    ("plain", ["Vermelho.\n", "圆形\n"]),
])
def test_supervised_spans_are_assistant_replies(template, expected):
    tok = build_byte_tokenizer()
    rendered = render_conversation(CONV, template, tok)
    assert [rendered.text[s:e] for s, e in rendered.supervised] == expected


def test_processor_labels_decode_to_assistant_replies_only():
    tok = build_byte_tokenizer()
    processor = MMoEProcessor(tok, image_transform=None, tokens_per_image=4, template="chatml")
    enc = processor.encode(CONV)
    assert enc.num_images == 1
    assert enc.input_ids.count(processor.image_token_id) == 4
    supervised = tok.decode([t for t, l in zip(enc.input_ids, enc.labels) if l != IGNORE_INDEX])
    assert supervised == "Vermelho.<|im_end|>\n圆形<|im_end|>\n"
    assert all(l == IGNORE_INDEX for t, l in zip(enc.input_ids, enc.labels) if t == processor.image_token_id)


def test_hf_jinja_template_spans():
    tok = build_byte_tokenizer()
    rendered = render_conversation(CONV, "hf", tok)
    assert [rendered.text[s:e] for s, e in rendered.supervised] == ["Vermelho.<|im_end|>\n", "圆形<|im_end|>\n"]


def test_non_alternating_conversation_is_rejected():
    with pytest.raises(ConversationError, match="turn 1 has role 'user'"):
        render_conversation([Turn("user", "a"), Turn("user", "b")], "chatml", build_byte_tokenizer())


def test_trained_bpe_is_deterministic_shorter_and_lossless():
    from mmoe.tokenization.tokenizer import train_bpe_tokenizer

    corpus = [text for text in SIX.values()] * 20
    a, b = train_bpe_tokenizer(corpus, 400), train_bpe_tokenizer(corpus, 400)
    assert a.get_vocab() == b.get_vocab()
    for text in SIX.values():
        ids = a(text, add_special_tokens=False)["input_ids"]
        assert a.decode(ids) == text
        assert len(ids) < len(text.encode("utf-8")) / 2
    unseen = "Ünïcödé ✓ 日本語"
    assert a.decode(a(unseen, add_special_tokens=False)["input_ids"]) == unseen
    assert a.convert_tokens_to_ids("<image>") in a("<image>\nx", add_special_tokens=False)["input_ids"]
