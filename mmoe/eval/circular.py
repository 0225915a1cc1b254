"""CircularEval rows: generate the rotated copies of each question when a file lacks them.

Rotation k moves every option text k places down (``collections.deque.rotate(k)``), so pass 1 of
``A. a, B. b, C. c, D. d`` reads ``A. d, B. a, C. b, D. c`` and the answer letter follows its text;
copy k gets ``index + k * offset`` (offset 1e6, times 10 while any index reaches it), as VLMEvalKit's
circular files do. Like VLMEvalKit, a question stays single-pass when rotating would change its
meaning: fewer than two options, an option that is itself a bare letter, or an option naming two or
more option letters ("Both A and B").
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import replace

from mmoe.eval.benchmark import OFFSET, Benchmark, MCQRow
from mmoe.eval.errors import BenchmarkError
from mmoe.eval.mode import ModeChoice, resolve_mode

_LABEL = re.compile(r"(?<![A-Za-z0-9])[A-Z](?![A-Za-z0-9])")


def rotatable(row: MCQRow) -> bool:
    """False for questions VLMEvalKit would leave unrotated (see the module docstring)."""
    letters = set(row.options)
    if len(letters) < 2:
        return False
    for text in row.options.values():
        if text.strip() in letters or len(set(_LABEL.findall(text)) & letters) >= 2:
            return False
    return True


def offset_for(rows: list[MCQRow]) -> int:
    offset = OFFSET
    while any(row.index >= offset for row in rows):
        offset *= 10
    return offset


def rotate(row: MCQRow, k: int, offset: int, names: dict[str, str]) -> MCQRow:
    """Rotation ``k`` of ``row`` (``k = 0`` keeps the options) with its own index and answer."""
    letters = list(row.options)
    texts = deque(row.options.values())
    texts.rotate(k)
    options = dict(zip(letters, texts))
    answer = None if row.answer is None else _moved(letters, row.answer, k, len(letters))
    index = row.index + k * offset
    cells = dict(row.cells)
    cells.update({names[letter]: text for letter, text in options.items()})
    cells[names["index"]] = str(index)
    if answer is not None:
        cells[names["answer"]] = answer
    cells["g_index"] = str(row.index)
    return replace(row, index=index, options=options, answer=answer, g_index=row.index, cells=cells, row=row.row)


def prepare(bench: Benchmark, mode: str = "auto") -> tuple[Benchmark, ModeChoice]:
    """The rows ``eval run`` predicts: in circular mode, rotations are added when the file lacks them
    (they are predicted, so nothing is invented); scoring a predictions file never adds rows."""
    choice = resolve_mode(mode, bench)
    if choice.mode == "circular" and not bench.has_rotations:
        choice = ModeChoice("circular", f"{choice.reason}; rotations generated and predicted")
        bench = expand(bench)
    if choice.mode == "circular":
        check_groups(bench)
    return bench, choice


def expand(bench: Benchmark) -> Benchmark:
    """``bench`` with every rotatable question followed by its rotations; unchanged if it already has them."""
    if bench.has_rotations:
        return bench
    offset = offset_for(bench.rows)
    rows: list[MCQRow] = []
    for row in bench.rows:
        passes = len(row.options) if rotatable(row) else 1
        rows.extend(rotate(row, k, offset, bench.names) for k in range(passes))
    columns = bench.columns if "g_index" in bench.names else [*bench.columns, "g_index"]
    names = {**bench.names, "g_index": "g_index"}
    return Benchmark(bench.name, bench.source, bench.language, rows, columns, names, bench.has_answers)


def _rotation_of(base: MCQRow, row: MCQRow) -> tuple[int, int] | None:
    """``(k, m)`` when ``row``'s options are ``base``'s first ``m`` options rotated by ``k`` (the rest in
    place, as VLMEvalKit's legacy files keep an "all/none of the above" last option), else None."""
    letters = list(base.options)
    texts = [text.strip() for text in base.options.values()]
    found = [row.options.get(letter, "").strip() for letter in letters]
    if len(row.options) != len(letters):
        return None
    for m in range(len(letters), 1, -1):
        for k in range(1, m):
            rotated = deque(texts[:m])
            rotated.rotate(k)
            if list(rotated) + texts[m:] == found:
                return k, m
    return None


def _moved(letters: list[str], letter: str, k: int, m: int) -> str:
    """Where option ``letter`` lands when the first ``m`` options rotate by ``k``."""
    i = letters.index(letter)
    return letters[(i + k) % m] if i < m else letter


def check_groups(bench: Benchmark, complete: bool = True) -> None:
    """Every rotation group of a circular benchmark has its pass-0 row (``index == g_index``), each other
    row is a rotation of it with the answer following its text, and (``complete``) no rotation is absent.
    The first violation raises, naming the file, index and column."""
    groups: dict[int, list[MCQRow]] = {}
    for row in bench.rows:
        groups.setdefault(row.group, []).append(row)
    for group, rows in groups.items():
        base = next((r for r in rows if r.index == group), None)
        if base is None:
            raise BenchmarkError(bench.source, f"belongs to question {group}, which has no pass-0 row (index {group})",
                                 row=rows[0].row, index=rows[0].index, column=bench.names.get("index", "index"))
        spans = set()
        rotations = set()
        for row in rows:
            if row is base:
                continue
            found = _rotation_of(base, row)
            if found is None:
                raise BenchmarkError(bench.source, f"options are not a rotation of index {group}'s options",
                                     row=row.row, index=row.index, column=bench.names.get("A", "A"))
            k, m = found
            if base.answer is not None and row.answer != _moved(list(base.options), base.answer, k, m):
                raise BenchmarkError(bench.source, f"answer {row.answer!r} does not follow index {group}'s answer {base.answer!r} "
                                     "through the rotation", row=row.row, index=row.index, column=bench.names.get("answer", "answer"))
            if k in rotations:
                raise BenchmarkError(bench.source, f"repeats rotation {k} of question {group}",
                                     row=row.row, index=row.index, column=bench.names.get("index", "index"))
            spans.add(m)
            rotations.add(k)
        if len(spans) > 1:
            raise BenchmarkError(bench.source, f"question {group}'s rows rotate different numbers of options ({sorted(spans)})",
                                 row=base.row, index=group, column=bench.names.get("A", "A"))
        if complete and spans:
            m = spans.pop()
            absent = sorted(set(range(1, m)) - rotations)
            if absent:
                raise BenchmarkError(
                    bench.source,
                    f"question {group} has {len(rotations) + 1} of its {m} rotations (rotation {', '.join(map(str, absent))} "
                    "absent); add the missing rows, or score with --missing vlmevalkit to judge it on the rows present",
                    row=base.row, index=group, column=bench.names.get("index", "index"))
