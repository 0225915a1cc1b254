"""Answer extraction: styles and languages, rule precedence, unmatched cases."""

from __future__ import annotations

import pytest

from mmoe.eval.extract import Extraction, extract

OPTIONS = {"A": "Swimming", "B": "Running", "C": "Fishing", "D": "Cycling"}

CASES = [
    ("B", "B", "letter"), ("B.", "B", "letter"), ("(B)", "B", "letter"), ("B:", "B", "letter"), ("[B]", "B", "letter"),
    ("B。", "B", "letter"), ("（B）", "B", "letter"), ("Ｂ", "B", "letter"), ("**B**", "B", "letter"),
    ("B) Running", "B", "leading"), ("B. Running", "B", "leading"), ("(B) Running", "B", "leading"),
    ("B、跑步", "B", "leading"), ("B Running fast", "B", "leading"), ("C - Fishing", "C", "leading"),
    ("Answer: B", "B", "phrase"), ("The answer is B.", "B", "phrase"), ("the answer is (B)", "B", "phrase"),
    ("The correct answer is **B**. Here's why: A is wrong because ...", "B", "phrase"),
    ("First I thought the answer is A, but the final answer is C", "C", "phrase"),
    ("答案是B", "B", "phrase"), ("答案：B。", "B", "phrase"), ("答案为 C", "C", "phrase"), ("正确答案是：D", "D", "phrase"),
    ("我选B", "B", "phrase"), ("应选C", "C", "phrase"),
    ("Resposta: B", "B", "phrase"), ("A resposta correta é B", "B", "phrase"), ("A resposta é a alternativa D", "D", "phrase"),
    ("الإجابة هي B", "B", "phrase"), ("الإجابة: ب", "B", "phrase"), ("الإجابة الصحيحة هي C", "C", "phrase"),
    ("Ответ: B", "B", "phrase"), ("Правильный ответ — В", "B", "phrase"), ("Верный ответ: вариант C", "C", "phrase"),
    ("Cevap: B", "B", "phrase"), ("Doğru cevap B şıkkıdır", "B", "phrase"),
    ("选项B", "B", "option_word"), ("Option B is correct because the person is running. A is wrong, C too.", "B", "option_word"),
    ("Seçenek D doğrudur", "D", "option_word"),
    ("B是正确的", "B", "standalone"), ("\\boxed{B}", "B", "standalone"), ("A person is running, so B", "B", "standalone"),
    ("A is correct", "A", "standalone"), ("B şıkkı doğru", "B", "standalone"),
    ("Running", "B", "text"), ("running on the beach", "B", "text"), ("The person is fishing.", "C", "text"),
    ("I think it is A or B", None, "several"), ("The answer is E", None, "none"), ("E", None, "none"),
    ("I don't know", None, "none"), ("", None, "empty"), ("   ", None, "empty"),
    ("Failed to obtain answer via API.", None, "api_failure"),
    # replies that named a confident wrong letter before (issue 13, finding 5)
    ("A, B", None, "several"), ("B、C", None, "several"), ("(B) or (C)", None, "several"),
    ("A. Swimming or B. Running", None, "several"), ("答案是A或B", None, "several"),
    ("D. Cycling is wrong; the answer is B.", "B", "phrase"),
    ("A. Swimming - no water.\nB. Running - mid-stride.\nC. Fishing - no rod.\nD. Cycling - no bike.\nAnswer: B", "B", "phrase"),
    ("Jl\ufffdD\ufffdb", None, "none"), ("The answer is b.", "B", "phrase"), ("The answer is a dog.", None, "none"),
    ("정답은 B입니다.", "B", "phrase"), ("答えはBです。", "B", "phrase"),
]


@pytest.mark.parametrize(("prediction", "letter", "rule"), CASES)
def test_extract(prediction, letter, rule):
    found = extract(prediction, OPTIONS)
    assert (found.letter, found.rule) == (letter, rule)


def test_option_text_inside_a_longer_option_does_not_count():
    options = {"A": "red", "B": "dark red", "C": "blue"}
    assert extract("It is dark red.", options).letter == "B"
    assert extract("red", options).letter == "A"


def test_letters_outside_the_row_options_never_match():
    options = {"A": "yes", "B": "no"}
    assert extract("C", options).letter is None and extract("答案是C", options).letter is None


def test_russian_preposition_is_not_a_letter():
    """"В" before a Cyrillic word is the preposition "in": "Ответ: В воде" chooses the option "В воде"."""
    options = {"A": "На дороге", "B": "В лесу", "C": "В воде", "D": "В небе"}
    assert extract("Ответ: В воде.", options) == extract("В воде", options) == Extraction("C", "text")
    assert extract("Ответ: В", options) == Extraction("B", "phrase")


def test_long_explanations_skip_text_matching():
    assert extract("The person " + "really " * 30 + "seems to be running", OPTIONS).letter is None
