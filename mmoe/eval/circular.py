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
    answer = None if row.answer is None else letters[(letters.index(row.answer) + k) % len(letters)]
    index = row.index + k * offset
    cells = dict(row.cells)
    cells.update({names[letter]: text for letter, text in options.items()})
    cells[names["index"]] = str(index)
    if answer is not None:
        cells[names["answer"]] = answer
    cells["g_index"] = str(row.index)
    return replace(row, index=index, options=options, answer=answer, g_index=row.index, cells=cells, row=row.row)


def prepare(bench: Benchmark, mode: str = "auto") -> tuple[Benchmark, str]:
    """Resolve ``auto`` to the mode the benchmark's name implies; add rotations for circular scoring."""
    mode = bench.default_mode if mode == "auto" else mode
    if mode not in ("vanilla", "circular"):
        raise ValueError(f"mode must be auto, vanilla or circular, not {mode!r}")
    return (expand(bench) if mode == "circular" else bench), mode


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
