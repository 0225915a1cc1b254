"""Prompt text for a benchmark row: hint, question, lettered options and an answer instruction, in one of
four styles. Cells are used as the file holds them (whitespace included), as VLMEvalKit does.

- ``vlmevalkit``: VLMEvalKit's dataset default (``ImageMCQDataset.build_prompt``): ``Hint:`` /
  ``Question:`` / ``Options:`` lines, then "Please select the correct answer from the options above. \n"
  in English for every language, byte-equal to VLMEvalKit's prompt.
- ``vlmevalkit_translated``: the same block with that closing line translated into the row's language
  (an mmoe variant; VLMEvalKit has none).
- ``llava``: LLaVA / InternVL / Parrot style: ``hint\nquestion\nA. ...`` then "Answer with the
  option's letter from the given choices directly." in the row's language (Parrot's wording). Chinese
  whenever the hint, question or options hold CJK characters, as Parrot's ``cn_string(prompt)`` decides.
- ``lmms``: lmms-eval's MMBench format: ``hint question There are several options:\nA. ...`` then a
  blank line and the post prompt of the row's language (lmms-eval's wording for en, zh and ru).

Languages without a translation fall back to English. Images go first, one ``<image>`` line each.

Training data uses the same code (``TRAINING_STYLE``), so a model trained on MCQ records sees the
exact prompt it is evaluated with.
"""

from __future__ import annotations

from mmoe.eval.benchmark import MCQRow
from mmoe.eval.choices import STYLES
from mmoe.languages import has_cjk

TRAINING_STYLE = "llava"  # Parrot's MCQ prompt: training MCQ records (TSV benchmarks, synthetic data)

_SELECT = {
    "en": "Please select the correct answer from the options above. \n",
    "zh": "请从上面的选项中选出正确答案。\n",
    "pt": "Selecione a resposta correta entre as opções acima.\n",
    "ar": "يرجى اختيار الإجابة الصحيحة من الخيارات أعلاه.\n",
    "tr": "Lütfen yukarıdaki seçeneklerden doğru cevabı seçin.\n",
    "ru": "Пожалуйста, выберите правильный ответ из вариантов выше.\n",
    "ko": "위의 선택지 중에서 정답을 고르세요.\n",
    "ja": "上の選択肢から正しい答えを選んでください。\n",
}
_LETTER = {
    "en": "Answer with the option's letter from the given choices directly.",
    "zh": "请直接用给定选项中的选项字母回答。",
    "pt": "Responda diretamente com a letra da opção das escolhas dadas.",
    "ar": "أجب مباشرةً بحرف الخيار من الاختيارات المعطاة.",
    "tr": "Verilen seçeneklerden doğrudan seçeneğin harfi ile cevap verin.",
    "ru": "Ответьте буквой варианта из предложенных вариантов напрямую.",
    "ko": "주어진 선택지 중 해당 옵션의 문자로 바로 답하세요.",
    "ja": "与えられた選択肢の中から、選択肢の文字で直接答えてください。",
}
_LMMS = {
    **_LETTER,
    "zh": "请直接使用所提供的选项字母作为答案回答。",
    "ru": "Выбери правильный вариант ответа буквой.",
}


def prompt_language(texts: list[str], language: str | None) -> str:
    """Chinese when any of ``texts`` holds CJK characters, else ``language`` (English when unknown)."""
    return "zh" if any(has_cjk(text) for text in texts) else language or "en"


def mcq_prompt(
    question: str, options: dict[str, str], language: str | None = None, hint: str | None = None, style: str = "vlmevalkit"
) -> str:
    """The text part of the user turn for a multiple-choice question; ``options`` in letter order."""
    lang = prompt_language([hint or "", question, *options.values()], language)
    if style in ("vlmevalkit", "vlmevalkit_translated"):
        text = f"Hint: {hint}\n" if hint is not None else ""
        text += f"Question: {question}\nOptions:\n"
        text += "".join(f"{letter}. {option}\n" for letter, option in options.items())
        return text + (_SELECT.get(lang, _SELECT["en"]) if style == "vlmevalkit_translated" else _SELECT["en"])
    if style == "llava":
        text = f"{hint}\n{question}" if hint is not None else question
        text += "".join(f"\n{letter}. {option}" for letter, option in options.items())
        return f"{text}\n{_LETTER.get(lang, _LETTER['en'])}"
    if style == "lmms":
        listed = "There are several options:\n" + "\n".join(f"{k}. {v}" for k, v in options.items())
        text = f"{hint} {question} {listed}" if hint is not None else f"{question} {listed}"
        return f"{text}\n\n{_LMMS.get(language or 'en', _LMMS['en'])}"
    raise ValueError(f"unknown prompt style {style!r}; choose one of {', '.join(STYLES)}")


def build_prompt(row: MCQRow, style: str = "vlmevalkit") -> str:
    """The text part of the user turn for ``row``."""
    return mcq_prompt(row.question, row.options, row.language, row.hint, style)


def user_message(row: MCQRow, style: str = "vlmevalkit", image_token: str = "<image>") -> str:
    """The user turn: one image placeholder line per image, then the prompt."""
    return f"{image_token}\n" * len(row.images) + build_prompt(row, style)
