"""Label masking per template: the supervised tokens decode to exactly the assistant turns."""

from __future__ import annotations

import pytest

from mmoe.model.processor import MMoEProcessor
from mmoe.model.splice import IGNORE_INDEX
from mmoe.tokenization import Turn, build_byte_tokenizer

TURNS = [
    Turn("user", "<image>\nWhat colour is the shape?"),
    Turn("assistant", "Vermelho."),
    Turn("user", "And in Russian?"),
    Turn("assistant", "Красный — ответ."),
]

JINJA = (
    "{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% elif m['role'] == 'assistant' %}{{ m['content'] }}</s>{% endif %}{% endfor %}"
)


def _supervised_spans(ids: list[int], labels: list[int]) -> list[list[int]]:
    spans, current = [], []
    for token, label in zip(ids, labels):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])


@pytest.mark.parametrize(
    "template, expected",
    [
        ("chatml", ["Vermelho.<|im_end|>\n", "Красный — ответ.<|im_end|>\n"]),
        ("llava_v1", [" Vermelho.<|im_end|>", " Красный — ответ.<|im_end|>"]),
        ("plain", ["Vermelho.\n", "Красный — ответ.\n"]),
        ("hf", ["Vermelho.</s>", "Красный — ответ.</s>"]),
    ],
)
def test_supervised_tokens_are_the_assistant_turns(template, expected):
    tok = build_byte_tokenizer()
    if template == "hf":
        tok.chat_template = JINJA
    processor = MMoEProcessor(tok, None, tokens_per_image=4, template=template)
    encoded = processor.encode(TURNS)
    spans = _supervised_spans(encoded.input_ids, encoded.labels)
    assert "".join(tok.decode(span) for span in spans) == "".join(expected)
    if template != "plain":  # plain renders user turns without images as nothing, so replies touch
        assert [tok.decode(span) for span in spans] == expected
    assert encoded.input_ids.count(processor.image_token_id) == 4
    assert all(label == IGNORE_INDEX for token, label in zip(encoded.input_ids, encoded.labels) if token == processor.image_token_id)
