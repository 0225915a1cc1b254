"""Language identification with lingua (its models ship inside the package; no download).

lingua separates close pairs that matter here (pt/gl, ru/mk, tr/az), but over all its 75 languages a
short reply is often given a language nobody wrote it in (``É o pé.`` comes out Yoruba). So detection
chooses among candidates only: by default the six MMMB languages plus the languages the sources declare
(``candidate_languages``). A text with fewer than ``min_letters`` letters, or whose best candidate has a
confidence under ``min_confidence``, is ``und``. A language declared by the source wins; detection still
runs so that disagreements with a candidate language can be counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from mmoe.languages import DETECTABLE, MMMB_LANGUAGES, UNDETERMINED, language_from_file_name, normalize_language


@lru_cache(maxsize=4)
def _detector(languages: tuple[str, ...], low_accuracy: bool):
    """One lingua detector per candidate set (building one loads its models)."""
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_iso_codes_639_1(*(getattr(IsoCode639_1, code.upper()) for code in languages))
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    return builder.build()


def candidate_languages(cfg) -> tuple[str, ...]:
    """The languages detection chooses among for a ``PrepConfig``: ``langid.languages`` (default the six
    MMMB languages; ``all``: every language lingua knows) plus each source's declared ``language``, a
    synthetic source's languages, and the language an MCQ TSV's file name states."""
    chosen = cfg.langid.languages
    if chosen == "all":
        return DETECTABLE
    codes = set(chosen or MMMB_LANGUAGES)
    for source in cfg.sources:
        declared = [source.language, *getattr(source, "languages", [])]
        if source.type == "mcq_tsv":
            declared += [language_from_file_name(path) for path in source.paths()]
        codes.update(code for code in map(normalize_language, declared) if code in DETECTABLE)
    return tuple(sorted(codes))


def letters(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


class LanguageTagger:
    """Detects languages among ``candidates`` in batches (lingua's parallel API) with a cache for repeated texts."""

    def __init__(self, *, candidates: Sequence[str] = MMMB_LANGUAGES, low_accuracy: bool = False, max_chars: int = 200,
                 min_letters: int = 3, min_confidence: float = 0.5, cache_size: int = 200_000) -> None:
        self.candidates = tuple(sorted({normalize_language(code) or code for code in candidates}))
        unknown = [code for code in self.candidates if code not in DETECTABLE]
        if unknown or len(self.candidates) < 2:
            raise ValueError(f"language ID needs two or more languages lingua detects, got {', '.join(self.candidates)}")
        self.low_accuracy = low_accuracy
        self.max_chars = max_chars
        self.min_letters = min_letters
        self.min_confidence = min_confidence
        self.cache_size = cache_size
        self._cache: dict[str, str] = {}
        self.mismatches: Counter[str] = Counter()

    def detect(self, texts: list[str]) -> list[str]:
        """ISO 639-1 code per text; ``und`` when lingua cannot tell (too few letters, low confidence)."""
        keys = [t[: self.max_chars].strip() for t in texts]
        todo = sorted({k for k in keys if k not in self._cache and letters(k) >= self.min_letters})
        if todo:
            detector = _detector(self.candidates, self.low_accuracy)
            if len(self._cache) + len(todo) > self.cache_size:
                self._cache.clear()
            for key, values in zip(todo, detector.compute_language_confidence_values_in_parallel(todo)):
                best = values[0] if values else None
                confident = best is not None and best.value >= self.min_confidence
                self._cache[key] = best.language.iso_code_639_1.name.lower() if confident else UNDETERMINED
        return [self._cache.get(k, UNDETERMINED) for k in keys]

    def resolve(self, declared: str | None, detected: str) -> str:
        """The declared language wins; a disagreement with a confident detection is counted when the declared
        language is a candidate (otherwise detection could not have found it)."""
        declared = normalize_language(declared)
        if declared is None:
            return detected
        if detected != UNDETERMINED and detected != declared and declared in self.candidates:
            self.mismatches[f"{declared}->{detected}"] += 1
        return declared
