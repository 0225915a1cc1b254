"""Prompt styles against the reference formats, in several languages."""

from __future__ import annotations

import pytest

from mmoe.eval.benchmark import MCQRow
from mmoe.eval.prompts import build_prompt, user_message

OPTIONS = {"A": "Swimming", "B": "Running", "C": "Fishing", "D": "Cycling"}
HINT = "The person is outdoors near a body of water."
QUESTION = "What activity is the person in the image performing?"


def row(language="en", hint=HINT, question=QUESTION, images=1) -> MCQRow:
    return MCQRow(index=1, question=question, options=OPTIONS, images=(b"x",) * images, hint=hint, language=language)


def test_lmms_style_matches_the_lmms_eval_snapshot():
    expected = (
        "The person is outdoors near a body of water. What activity is the person in the image performing? "
        "There are several options:\nA. Swimming\nB. Running\nC. Fishing\nD. Cycling\n\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert build_prompt(row(), "lmms") == expected
    assert build_prompt(row(hint=None), "lmms").startswith(QUESTION + " There are several options:\n")


def test_vlmevalkit_default_block():
    expected = (
        f"Hint: {HINT}\nQuestion: {QUESTION}\nOptions:\nA. Swimming\nB. Running\nC. Fishing\nD. Cycling\n"
        "Please select the correct answer from the options above. \n"
    )
    assert build_prompt(row(), "vlmevalkit") == expected
    assert build_prompt(row(hint=None), "vlmevalkit").startswith("Question: ")


def test_llava_style_and_languages():
    assert build_prompt(row(), "llava") == (
        f"{HINT}\n{QUESTION}\nA. Swimming\nB. Running\nC. Fishing\nD. Cycling\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert build_prompt(row("pt"), "llava").endswith("\nResponda diretamente com a letra da opção das escolhas dadas.")
    assert build_prompt(row("tr"), "llava").endswith("seçeneğin harfi ile cevap verin.")
    assert build_prompt(row(question="图中的人在做什么？"), "llava").endswith("\n请直接用给定选项中的选项字母回答。")
    assert build_prompt(row("ru"), "lmms").endswith("\n\nВыбери правильный вариант ответа буквой.")


QUESTIONS = {
    "zh": "图中的人在做什么？",
    "pt": "Que atividade a pessoa na imagem está realizando?",
    "ar": "ما النشاط الذي يقوم به الشخص في الصورة؟",
    "tr": "Resimdeki kişi hangi aktiviteyi yapıyor?",
    "ru": "Каким занятием занят человек на изображении?",
}


@pytest.mark.parametrize("language", ["zh", "pt", "ar", "tr", "ru"])
def test_vlmevalkit_style_is_english_in_every_language(language):
    """VLMEvalKit's build_prompt has one closing line, English, whatever the file's language."""
    question = QUESTIONS[language]
    expected = (
        f"Question: {question}\nOptions:\nA. Swimming\nB. Running\nC. Fishing\nD. Cycling\n"
        "Please select the correct answer from the options above. \n"
    )
    assert build_prompt(row(language, hint=None, question=question), "vlmevalkit") == expected
    translated = build_prompt(row(language, hint=None, question=question), "vlmevalkit_translated")
    assert translated.startswith(expected[: expected.index("Please")]) and "Please select" not in translated


def test_translated_style_has_its_own_instruction_per_language():
    endings = {build_prompt(row(lang), "vlmevalkit_translated").splitlines()[-1] for lang in ["en", "zh", "pt", "ar", "tr", "ru"]}
    assert len(endings) == 6


def test_cells_keep_their_whitespace():
    """VLMEvalKit formats the cells as read: a trailing space or a newline inside a cell stays."""
    r = MCQRow(index=1, question="How many? ", options={"A": " 2", "B": "3\n"}, images=(), hint="Look  closely.")
    assert build_prompt(r, "vlmevalkit") == (
        "Hint: Look  closely.\nQuestion: How many? \nOptions:\nA.  2\nB. 3\n\n"
        "Please select the correct answer from the options above. \n"
    )


def test_llava_style_detects_chinese_in_hint_and_options_too():
    """Parrot picks the Chinese instruction when cn_string(prompt) holds, the prompt being hint + question + options."""
    in_options = MCQRow(index=1, question="Which one?", options={"A": "苹果", "B": "香蕉"}, images=(), language="en")
    in_hint = MCQRow(index=1, question="Which one?", options={"A": "x", "B": "y"}, images=(), hint="看图。", language="pt")
    assert build_prompt(in_options, "llava").endswith("\n请直接用给定选项中的选项字母回答。")
    assert build_prompt(in_hint, "llava").endswith("\n请直接用给定选项中的选项字母回答。")


def test_images_come_first_and_unknown_languages_fall_back_to_english():
    assert user_message(row(images=2), "llava").startswith("<image>\n<image>\n" + HINT)
    assert build_prompt(row("xx"), "llava").endswith("from the given choices directly.")
    with pytest.raises(ValueError, match="unknown prompt style"):
        build_prompt(row(), "other")
