"""Language codes: canonical ISO-style codes (``zh`` for Chinese) and what benchmark file names use."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

# MMMB's six first; file names spell Chinese ``cn``.
LANGUAGES = ("en", "zh", "pt", "ar", "tr", "ru")
ALIASES = {"cn": "zh", "chs": "zh", "zh-cn": "zh", "ch": "zh", "kr": "ko", "jp": "ja"}
_KNOWN = set(LANGUAGES) | {"ko", "ja", "de", "fr", "es", "it", "vi", "th", "id", "hi", "uk", "pl", "nl"}

_SCRIPTS = (
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
)


def canonical(code: str) -> str:
    """``cn`` -> ``zh``; any other code is lower-cased and kept."""
    code = code.strip().lower()
    return ALIASES.get(code, code)


def from_file_name(path: str | Path) -> str | None:
    """The language a benchmark file name states (``mmmb_cn.tsv``, ``MMBench_DEV_EN_V11.tsv``), if any."""
    stem = Path(path).name.split(".")[0].lower()
    if stem.startswith("ccbench"):
        return "zh"
    for token in re.split(r"[_\-\s]+", stem):
        if token in ALIASES or token in _KNOWN:
            return canonical(token)
    return None


def from_text(texts: Iterable[str]) -> str:
    """The dominant script of ``texts`` (zh, ja, ko, ar, ru), else ``en``; a fallback when no name says."""
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
    return bool(_SCRIPTS[0][1].search(text))
