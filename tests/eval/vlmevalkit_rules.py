"""VLMEvalKit's exact-matching answer rules (``can_infer``, no judge), written for mmoe's tests from the
rules as VLMEvalKit states them; used only to count, on the reply corpus, what those rules read.

Two versions: ``2026`` as at open-compass/VLMEvalKit e8e78f05f3080fe28154f2130321f17951c3be94 (a single
standalone letter must be among the last four tokens; an "answer is X" pattern; option text matched only
in answers at most twice the options' length), and ``2024`` as vendored by AIDC-AI/Parrot at
989d6d01df5c39cbe9a58172896f06e7b1792798 (the rules Parrot's paper numbers came from: none of those three).
``None`` stands for VLMEvalKit's ``False`` and ``Z`` (both unmatched, scored wrong under exact matching).
"""

from __future__ import annotations

import re

VERSIONS = ("2024", "2026")
_REFUSALS = ("Sorry, I can't help with images of people yet.", "I can't process this file.",
             "I'm sorry, but without the image provided", "Cannot determine the answer")
_SEPARATORS = ".()[],:;!*#{}"
_ANSWER_IS = re.compile(r"(?:correct\s+)?answer\s+is\s+\**([ABCD])\**", re.IGNORECASE)


def _by_letter(answer: str, letters: list[str], version: str) -> str | None:
    """The option-letter rule; returns a letter, ``"Z"``, or None (not decided)."""
    if "Failed to obtain answer via API" in answer:
        return None
    if any(refusal in answer for refusal in _REFUSALS):
        return "Z"
    spaced = "".join(" " if ch in _SEPARATORS else ch for ch in answer)
    tokens = spaced.split()
    present = [letter for letter in letters if letter in tokens]
    if len(present) == 1:
        letter = present[0]
        if version == "2024" or tokens.index(letter) > len(tokens) - 5:
            return letter
    elif not present and "Z" in tokens:
        return "Z"
    if version == "2026":
        found = _ANSWER_IS.search(answer)
        if found and found.group(1).upper() in letters:
            return found.group(1).upper()
    return None


def _by_text(answer: str, options: dict[str, str], version: str) -> str | None:
    lowered = answer.lower()
    if version == "2026" and len(lowered) > 2 * sum(len(text) for text in options.values()):
        return None
    hits = [letter for letter, text in options.items() if text.lower() in lowered]
    return hits[0] if len(hits) == 1 else None


def vlmevalkit_letter(answer: str, options: dict[str, str], version: str = "2026") -> str | None:
    """The letter VLMEvalKit's exact matching reads in ``answer``, or None when it reads none (or ``Z``)."""
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}")
    letter = _by_letter(answer, list(options), version) or _by_text(answer, options, version)
    return None if letter == "Z" else letter
