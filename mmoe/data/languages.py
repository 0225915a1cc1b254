"""Language codes: ISO 639-1, MMMB's six first, with stable integer ids for statistics.

The table is fixed (not derived from a library version) so language ids mean the same thing in
every prepared dataset and every run. ``und`` (undetermined) is last.
"""

from __future__ import annotations

MMMB_LANGUAGES = ("en", "zh", "pt", "ar", "tr", "ru")

# Every language lingua 2.x detects, MMMB's six first, then alphabetical; ``und`` closes the table.
LANGUAGES: tuple[str, ...] = MMMB_LANGUAGES + tuple(
    code
    for code in (
        "af az be bg bn bs ca cs cy da de el eo es et eu fa fi fr ga gu he hi hr hu hy id is it ja "
        "ka kk ko la lg lt lv mi mk mn mr ms nb nl nn pa pl ro sk sl sn so sq sr st sv sw ta te th "
        "tl tn ts uk ur vi xh yo zu"
    ).split()
) + ("und",)

UNDETERMINED = "und"
_IDS = {code: i for i, code in enumerate(LANGUAGES)}

# Spellings seen in real data (file suffixes, locale tags, names) -> ISO 639-1.
_ALIASES = {
    "cn": "zh", "zh-cn": "zh", "zh-tw": "zh", "zh-hans": "zh", "zh-hant": "zh", "chinese": "zh",
    "english": "en", "portuguese": "pt", "pt-br": "pt", "pt-pt": "pt", "arabic": "ar",
    "turkish": "tr", "russian": "ru", "iw": "he", "no": "nb",
}

# MMMB / VLMEvalKit file names use ``cn`` for Chinese.
MMMB_FILE_CODE = {"zh": "cn"}


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


def language_id(code: str | None) -> int:
    """Stable integer id of a language code; anything outside the table is ``und``."""
    return _IDS.get(normalize_language(code) or UNDETERMINED, _IDS[UNDETERMINED])


def mmmb_file_code(code: str) -> str:
    """The code MMMB file names use (``zh`` -> ``cn``)."""
    return MMMB_FILE_CODE.get(code, code)
