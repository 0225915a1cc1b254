"""The labelled reply corpus (tests/eval/reply_corpus.json): realistic replies in the six MMMB languages
plus Korean and Japanese, each with the letter a careful reader assigns; mmoe must read every one."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mmoe.eval.extract import extract

CORPUS = json.loads((Path(__file__).with_name("reply_corpus.json")).read_text(encoding="utf-8"))
REPLIES = CORPUS["replies"]


def test_corpus_covers_every_language():
    counts = Counter(r["language"] for r in REPLIES)
    assert len(REPLIES) >= 200 and set(counts) == {"en", "zh", "pt", "ar", "tr", "ru", "ko", "ja"}
    assert min(counts.values()) >= 20
    assert sum(r["letter"] is None for r in REPLIES) >= 30  # replies that choose nothing, or several


@pytest.mark.parametrize("item", REPLIES, ids=[f"{r['language']}-{i}" for i, r in enumerate(REPLIES)])
def test_mmoe_reads_each_reply(item):
    found = extract(item["reply"], CORPUS["option_sets"][item["options"]])
    assert found.letter == item["letter"], (item["reply"], found)


def corpus_table() -> str:
    """The Markdown table docs/eval.md shows: per language, replies read right (and confident wrong
    letters) by mmoe and by VLMEvalKit's exact-matching rules, 2024 (Parrot) and 2026 versions."""
    from vlmevalkit_rules import vlmevalkit_letter

    readers = {
        "mmoe": lambda reply, options: extract(reply, options).letter,
        "VLMEvalKit 2024 (Parrot)": lambda reply, options: vlmevalkit_letter(reply, options, "2024"),
        "VLMEvalKit 2026": lambda reply, options: vlmevalkit_letter(reply, options, "2026"),
    }
    languages = ["en", "zh", "pt", "ar", "tr", "ru", "ko", "ja"]
    lines = ["| reader | " + " | ".join(languages) + " | all |", "|---|" + "---:|" * (len(languages) + 1)]
    totals = Counter(r["language"] for r in REPLIES)
    lines.append("| replies | " + " | ".join(str(totals[lang]) for lang in languages) + f" | {len(REPLIES)} |")
    for name, read in readers.items():
        right, wrong = Counter(), Counter()
        for r in REPLIES:
            letter = read(r["reply"], dict(CORPUS["option_sets"][r["options"]]))
            right[r["language"]] += letter == r["letter"]
            wrong[r["language"]] += letter is not None and letter != r["letter"]
        cells = [f"{right[lang]} ({wrong[lang]})" for lang in languages]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {sum(right.values())} ({sum(wrong.values())}) |")
    return "\n".join(lines) + "\n"


def test_docs_show_the_corpus_counts():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "eval.md").read_text(encoding="utf-8")
    assert corpus_table() in docs, corpus_table()
