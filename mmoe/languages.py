"""Language codes for data preparation and evaluation: one normalisation, one id table, and the codes
benchmark file names use.

The id table is fixed (not derived from a library version) so ``language_ids`` mean the same thing in
every prepared dataset and every run: MMMB's six first, then every other language lingua 2.x detects
alphabetically, ``und`` (undetermined) last.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from mmoe.iso639_1 import ISO_639_1

MMMB_LANGUAGES = ("en", "zh", "pt", "ar", "tr", "ru")
UNDETERMINED = "und"

LANGUAGES: tuple[str, ...] = MMMB_LANGUAGES + tuple(
    (
        "af az be bg bn bs ca cs cy da de el eo es et eu fa fi fr ga gu he hi hr hu hy id is it ja "
        "ka kk ko la lg lt lv mi mk mn mr ms nb nl nn pa pl ro sk sl sn so sq sr st sv sw ta te th "
        "tl tn ts uk ur vi xh yo zu"
    ).split()
) + (UNDETERMINED,)
_IDS = {code: i for i, code in enumerate(LANGUAGES)}
DETECTABLE: tuple[str, ...] = LANGUAGES[:-1]  # what lingua can detect

# Spellings seen in real data (file suffixes, locale tags, names) -> ISO 639-1.
_ALIASES = {
    "cn": "zh", "chs": "zh", "ch": "zh", "zh-cn": "zh", "zh-tw": "zh", "zh-hans": "zh", "zh-hant": "zh",
    "chinese": "zh", "english": "en", "portuguese": "pt", "pt-br": "pt", "pt-pt": "pt", "arabic": "ar",
    "turkish": "tr", "russian": "ru", "kr": "ko", "jp": "ja", "iw": "he", "no": "nb",
}

# MMMB / VLMEvalKit file names spell Chinese ``cn``.
_MMMB_FILE_CODES = {"zh": "cn"}

# Languages a file-name token may name (``cn``, ``EN``, ``chinese``); short words that are also codes
# (``is``, ``so``, ``no``) are left out.
_FILE_NAME_LANGUAGES = set(MMMB_LANGUAGES) | {"ko", "ja", "de", "fr", "es", "it", "vi", "th", "id", "hi", "uk", "pl", "nl"}

_SCRIPTS = (
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
)


def normalize_language(value: str | None) -> str | None:
    """``'zh-CN'``, ``'cn'``, ``'Chinese'`` -> ``'zh'``; empty -> None; unknown tags keep their primary subtag."""
    if value is None:
        return None
    text = str(value).strip().lower().replace("_", "-")
    if not text:
        return None
    if text in _ALIASES:
        return _ALIASES[text]
    primary = text.split("-")[0]
    return _ALIASES.get(primary, primary)


def iso_language(value: str | None) -> str | None:
    """``normalize_language(value)`` when that is an ISO 639-1 code (``'pt-BR'`` -> ``'pt'``), else None
    (``'klingon'``, ``'tlh'``, ``'por'``, ``'und'``)."""
    code = normalize_language(value)
    return code if code in ISO_639_1 else None


def language_id(code: str | None) -> int:
    """Stable integer id of a language code; anything outside the table is ``und``."""
    return _IDS.get(normalize_language(code) or UNDETERMINED, _IDS[UNDETERMINED])


def mmmb_file_code(code: str) -> str:
    """The code MMMB file names use (``zh`` -> ``cn``)."""
    return _MMMB_FILE_CODES.get(code, code)


def language_from_file_name(path: str | Path) -> str | None:
    """The language a benchmark file name states (``mmmb_cn.tsv``, ``MMBench_DEV_EN_V11.tsv``), if any."""
    stem = Path(path).name.split(".")[0].lower()
    if stem.startswith("ccbench"):
        return "zh"
    for token in re.split(r"[_\-\s]+", stem):
        code = normalize_language(token)
        if code in _FILE_NAME_LANGUAGES:
            return code
    return None


def declared_language(language: str | None, path: str | Path) -> str | None:
    """The language a caller gives, else the one the file name states, else None."""
    return normalize_language(language) or language_from_file_name(path)


def language_from_script(texts: Iterable[str]) -> str:
    """The dominant script of ``texts`` (zh, ja, ko, ar, ru), else ``en``; a fallback when nothing is declared."""
    counts: dict[str, int] = {}
    total = 0
    for text in texts:
        total += 1
        for lang, pattern in _SCRIPTS:
            if pattern.search(text):
                counts[lang] = counts.get(lang, 0) + 1
                break
    if counts:
        lang, n = max(counts.items(), key=lambda kv: kv[1])
        if n * 2 > total:
            return lang
    return "en"


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds CJK ideographs (prompts then use Chinese, as VLMEvalKit does)."""
    return bool(_SCRIPTS[0][1].search(text))
