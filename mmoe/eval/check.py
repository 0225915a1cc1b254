"""``mmoe eval check``: everything ``eval run`` and ``eval score`` would later refuse, found up front.

A file is read and validated as the evaluator reads it, its scoring mode resolved, its rotation groups
checked (circular files), and every distinct image decoded once, in full, by ``mmoe.images.decode`` as
generation decodes it (a truncated image passes a header check but fails at generation time); the loader
itself only checks headers here. The first problem raises a ``BenchmarkError`` naming file, row, index
and column; a good file gets one line describing it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mmoe.eval.benchmark import Benchmark
from mmoe.eval.circular import check_groups, expand
from mmoe.eval.errors import ImageDataError
from mmoe.eval.mode import resolve_mode
from mmoe.eval.sources import open_benchmark
from mmoe.images import EVAL_LIMITS, ImageError

# Cells pandas reads as missing by default, as VLMEvalKit's loader does: mmoe keeps them as text.
PANDAS_MISSING = {"#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
                  "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}


def decode_all(bench: Benchmark) -> int:
    """Decode every distinct image in full; returns how many were decoded."""
    seen: set[int] = set()
    column = bench.names.get("image", bench.names.get("image_path"))
    for row in bench.rows:
        if id(row.images) in seen:
            continue
        seen.add(id(row.images))
        try:
            row.load_images()
        except ImageError as exc:
            raise ImageDataError(bench.source, f"image cannot be decoded ({exc})", row=row.row, index=row.index, column=column) from None
    return len(seen)


def pandas_missing_cells(bench: Benchmark) -> int:
    """Option cells VLMEvalKit would read as empty (``None``, ``NA``, ...) but mmoe reads as option text
    (a hint ``nan`` is no hint for both)."""
    return sum(1 for row in bench.rows for text in row.options.values() if text.strip() in PANDAS_MISSING)


def describe(path: str | Path, language: str | None = None, split: str | None = None) -> str:
    bench = open_benchmark(path, language, split, image_limits=replace(EVAL_LIMITS, decode=False))
    choice = resolve_mode("auto", bench)
    if choice.mode == "circular":
        check_groups(bench)
    images = decode_all(bench)
    questions = len({row.group for row in bench.rows})
    if bench.has_rotations:
        rotations = "has rotations"
    elif choice.mode == "circular":
        rotations = f"no rotations (eval run predicts {len(expand(bench))} rows once rotated; eval score scores the rows given)"
    else:
        rotations = "no rotations"
    answers = "answers" if bench.has_answers else "no answers (test split)"
    text = (f"{path}: {len(bench)} rows, {questions} questions, language {bench.language}, {choice.mode} scoring "
            f"({choice.reason}), {answers}, {rotations}, {images} images decoded")
    odd = pandas_missing_cells(bench)
    if odd:
        text += f"; note: {odd} option cells such as 'None' or 'NA' are text here but empty for VLMEvalKit's pandas reader"
    return text

