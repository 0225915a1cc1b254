"""Language identification with lingua (its models ship inside the package; no download).

lingua separates close pairs that matter here (pt/gl, ru/mk, tr/az). A language declared by the
source wins; detection still runs so that disagreements can be counted.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from mmoe.languages import UNDETERMINED, normalize_language


@lru_cache(maxsize=4)
def _detector(languages: tuple[str, ...] | None, low_accuracy: bool):
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    if languages:
        codes = [getattr(IsoCode639_1, code.upper()) for code in languages]
        builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
    else:
        builder = LanguageDetectorBuilder.from_all_languages()
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    return builder.build()


class LanguageTagger:
    """Detects languages in batches (lingua's parallel API) with a cache for repeated texts."""

    def __init__(self, languages: list[str] | None = None, low_accuracy: bool = False, max_chars: int = 200, cache_size: int = 200_000) -> None:
        self.languages = tuple(sorted({normalize_language(code) or code for code in languages})) if languages else None
        self.low_accuracy = low_accuracy
        self.max_chars = max_chars
        self.cache_size = cache_size
        self._cache: dict[str, str] = {}
        self.mismatches: Counter[str] = Counter()

    def detect(self, texts: list[str]) -> list[str]:
        """ISO 639-1 code per text, ``und`` when lingua cannot tell (empty text, digits only)."""
        keys = [t[: self.max_chars].strip() for t in texts]
        todo = sorted({k for k in keys if k and k not in self._cache})
        if todo:
            detector = _detector(self.languages, self.low_accuracy)
            if len(self._cache) + len(todo) > self.cache_size:
                self._cache.clear()
            for key, lang in zip(todo, detector.detect_languages_in_parallel_of(todo)):
                self._cache[key] = lang.iso_code_639_1.name.lower() if lang is not None else UNDETERMINED
        return [self._cache.get(k, UNDETERMINED) if k else UNDETERMINED for k in keys]

    def resolve(self, declared: str | None, detected: str) -> str:
        """The declared language wins; a disagreement with a confident detection is counted."""
        declared = normalize_language(declared)
        if declared is None:
            return detected
        if detected != UNDETERMINED and detected != declared:
            self.mismatches[f"{declared}->{detected}"] += 1
        return declared
