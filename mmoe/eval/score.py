"""Vanilla and circular accuracy over a benchmark's rows and a prediction per row.

Vanilla: every row is a question. Circular (MMBench family): rows are grouped by ``g_index``
(``index % 1e6`` when the file has no such column); a question is right only when every row of its
group is answered right, so an unmatched rotation makes it wrong. Categories come from the group's
pass-0 row (``index == g_index``).

Rows nobody predicted follow the ``missing`` policy, and are always counted in the summary:

- ``strict`` (default): a missing row is wrong, and so is its question; the denominator is every
  question of the benchmark.
- ``vlmevalkit``: VLMEvalKit's handling. Vanilla drops rows without a prediction; circular drops
  questions whose pass-0 row has no prediction and judges each remaining group on the rows present.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mmoe.eval.benchmark import Benchmark, MCQRow
from mmoe.eval.choices import MISSING_POLICIES
from mmoe.eval.circular import check_groups
from mmoe.eval.errors import BenchmarkError
from mmoe.eval.extract import RULE_SET, RULES, Extraction, extract

MODES = ("vanilla", "circular")
MISSING_LISTED = 50  # missing indices listed in a summary (all are counted)
Judge = Callable[[MCQRow, str], str | None]


@dataclass
class ScoredRow:
    row: MCQRow
    prediction: str | None
    extraction: Extraction

    @property
    def missing(self) -> bool:
        return self.prediction is None

    @property
    def hit(self) -> bool:
        return self.extraction.letter is not None and self.extraction.letter == self.row.answer


@dataclass
class Question:
    """One scored question: its pass-0 row and all its rows (one in vanilla mode)."""

    main: MCQRow
    rows: list[ScoredRow] = field(default_factory=list)

    @property
    def hit(self) -> bool:
        return all(r.hit for r in self.rows)


@dataclass
class Score:
    benchmark: Benchmark
    mode: str
    rows: list[ScoredRow]
    questions: list[Question]
    missing: str = "strict"
    dropped: int = 0

    def summary(self) -> dict:
        """The JSON-ready summary; accuracies are fractions in [0, 1]."""
        hits = [q.hit for q in self.questions]
        rules = Counter(r.extraction.rule for r in self.rows if not r.missing)
        absent = sorted(r.row.index for r in self.rows if r.missing)
        out = {
            "benchmark": self.benchmark.name,
            "language": self.benchmark.language,
            "mode": self.mode,
            "missing_policy": self.missing,
            "overall": _mean(hits),
            "by_category": _grouped(self.questions, lambda q: q.main.category),
            "by_l2_category": _grouped(self.questions, lambda q: q.main.l2_category),
            "n_questions": len(self.questions),
            "n_questions_dropped": self.dropped,
            "n_correct": sum(hits),
            "n_rows": len(self.rows),
            "n_predicted": len(self.rows) - len(absent),
            "n_unmatched": sum(1 for r in self.rows if not r.missing and r.extraction.letter is None),
            "n_missing": len(absent),
            "missing_indices": absent[:MISSING_LISTED],
            "extraction": {"rule_set": RULE_SET, "rules": list(RULES)},
            "extraction_rules": dict(sorted(rules.items())),
        }
        if self.mode == "circular":
            out["vanilla_all"] = _mean([r.hit for r in self.rows])
            out["vanilla_0"] = _mean([r.hit for q in self.questions for r in q.rows if r.row.index == q.main.index])
        return out


def _mean(values: list[bool]) -> float:
    return sum(values) / len(values) if values else 0.0


def _grouped(questions: list[Question], key: Callable[[Question], str | None]) -> dict[str, float]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for q in questions:
        value = key(q)
        if value is not None:
            groups[value].append(q.hit)
    return {name: _mean(hits) for name, hits in sorted(groups.items())}


def score(
    bench: Benchmark, predictions: Mapping[int, str], mode: str, judge: Judge | None = None, missing: str = "strict"
) -> Score:
    """Score ``predictions`` (index -> raw model answer; absent = missing) on ``bench``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, not {missing!r}")
    if not bench.has_answers:
        raise BenchmarkError(bench.source, "has no answer column (a test split): it yields predictions, not scores", column="answer")
    if mode == "circular":
        check_groups(bench, complete=missing == "strict")
    scored = []
    for row in bench.rows:
        prediction = predictions.get(row.index)
        extraction = Extraction(None, "missing") if prediction is None else extract(prediction, row.options)
        scored.append(ScoredRow(row, prediction, extraction))
    questions = _questions(scored, mode)
    dropped = 0
    if missing == "vlmevalkit":
        kept = [_present(q) for q in questions if any(r.row.index == q.main.index and not r.missing for r in q.rows)]
        dropped = len(questions) - len(kept)
        questions = kept
    if judge is not None:
        _apply_judge(questions, judge)
    return Score(bench, mode, scored, questions, missing, dropped)


def _present(question: Question) -> Question:
    """The question judged on its predicted rows only (VLMEvalKit's handling of missing rotations)."""
    return Question(question.main, [r for r in question.rows if not r.missing])


def _questions(scored: list[ScoredRow], mode: str) -> list[Question]:
    if mode == "vanilla":
        return [Question(r.row, [r]) for r in scored]
    groups: dict[int, list[ScoredRow]] = defaultdict(list)
    for r in scored:
        groups[r.row.group].append(r)
    questions = []
    for group, rows in groups.items():
        mains = [r.row for r in rows if r.row.index == group]
        main = mains[0] if mains else min((r.row for r in rows), key=lambda row: row.index)
        questions.append(Question(main, rows))
    return questions


def _apply_judge(questions: list[Question], judge: Judge) -> None:
    """Ask the judge only about unmatched rows of questions that are not already lost."""
    for q in questions:
        for r in q.rows:
            if any(o.extraction.letter is not None and not o.hit for o in q.rows) or any(o.missing for o in q.rows):
                break
            if r.extraction.letter is None and r.prediction is not None:
                letter = judge(r.row, r.prediction)
                r.extraction = Extraction(letter if letter in r.row.options else None, "judge" if letter else "none")
