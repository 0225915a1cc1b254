"""Multiple-choice prompts in Parrot's VLMEvalKit layout, per language.

``[hint\\n]question\\nA. ...\\nB. ...\\n<instruction>``, the instruction in the question's language
(Parrot's ``build_multi_choice_prompt``); the image placeholder goes first.
"""

from __future__ import annotations

from mmoe.data.records import IMAGE_TOKEN

ANSWER_WITH_LETTER = {
    "en": "Answer with the option's letter from the given choices directly.",
    "zh": "请直接用给定选项中的选项字母回答。",
    "pt": "Responda diretamente com a letra da opção das escolhas dadas.",
    "ar": "أجب مباشرةً بحرف الخيار من الاختيارات المعطاة.",
    "tr": "Verilen seçeneklerden doğrudan seçeneğin harfi ile cevap verin.",
    "ru": "Ответьте буквой варианта из предложенных вариантов напрямую.",
}


def mcq_prompt(question: str, options: dict[str, str], language: str | None = None, hint: str | None = None) -> str:
    """The user text of a multiple-choice question (without the image placeholder)."""
    text = f"{hint}\n{question}" if hint else question
    for letter, option in options.items():
        text += f"\n{letter}. {option}"
    return text + "\n" + ANSWER_WITH_LETTER.get(language or "en", ANSWER_WITH_LETTER["en"])


def mcq_user_turn(question: str, options: dict[str, str], language: str | None = None, hint: str | None = None, images: int = 1) -> str:
    return (IMAGE_TOKEN + "\n") * images + mcq_prompt(question, options, language, hint)
