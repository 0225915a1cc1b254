"""The synthetic generator's study options: a skewed language mix and the sentence answer format."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from mmoe.data.synthetic import generate_training_set
from mmoe.data.synthetic.lexicon import FULL_SENTENCE, KINDS, QUESTIONS, SENTENCE, SHORT_ANSWER
from mmoe.languages import MMMB_LANGUAGES

SKEW = {"en": 0.8, **{lang: 0.04 for lang in MMMB_LANGUAGES if lang != "en"}}


def _records(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_language_weights_give_the_mix_and_balance_kinds_within_each_language(tmp_path):
    records = _records(generate_training_set(tmp_path, 200, seed=2, language_weights=SKEW, mcq_fraction=0.0, extra_questions=0))
    counts = Counter(r["language"] for r in records)
    assert counts == {"en": 160, "zh": 8, "pt": 8, "ar": 8, "tr": 8, "ru": 8}
    for language in MMMB_LANGUAGES:
        questions = [r["conversations"][0]["value"] for r in records if r["language"] == language]
        kinds = Counter(next(k for k in KINDS if _asks(q, language, k)) for q in questions)
        assert set(kinds.values()) == {counts[language] // len(KINDS)}  # every kind equally often


def _asks(user: str, language: str, kind: str) -> bool:
    return any(q in user for q in QUESTIONS[language][kind])


def test_equal_weights_reproduce_the_default_data_byte_for_byte(tmp_path):
    default = generate_training_set(tmp_path / "a", 60, seed=4)
    equal = generate_training_set(tmp_path / "b", 60, seed=4, language_weights=dict.fromkeys(MMMB_LANGUAGES, 1.0))
    assert default.read_bytes() == equal.read_bytes()


def test_sentence_family_asks_the_same_questions_with_a_conflicting_answer_format(tmp_path):
    common = {"seed": 5, "mcq_fraction": 0.0, "extra_questions": 0}
    word = _records(generate_training_set(tmp_path / "w", 24, **common))
    sentence = _records(generate_training_set(tmp_path / "s", 24, short_format="sentence", **common))
    for w, s in zip(word, sentence):
        language = w["language"]
        (wq, wa), (sq, sa) = [(r["conversations"][0]["value"], r["conversations"][1]["value"]) for r in (w, s)]
        assert wq.endswith(SHORT_ANSWER[language]) and sq.endswith(FULL_SENTENCE[language])
        assert wq.removesuffix(SHORT_ANSWER[language]).strip() == sq.removesuffix(FULL_SENTENCE[language]).strip()
        assert sa == SENTENCE[language].format(wa) and sa != wa


@pytest.mark.parametrize("weights, match", [
    ({"en": 1.0}, r"missing or not positive: \['zh'"),
    ({**SKEW, "zh": 0.0}, r"missing or not positive: \['zh'\]"),
    ({**SKEW, "xx": 0.1}, r"unknown: \['xx'\]"),
])
def test_bad_language_weights_are_named(tmp_path, weights, match):
    with pytest.raises(ValueError, match=match):
        generate_training_set(tmp_path, 6, language_weights=weights)


def test_unknown_short_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="short_format must be one of word, sentence"):
        generate_training_set(tmp_path, 6, short_format="paragraph")
