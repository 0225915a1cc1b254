"""Multiple-choice benchmarks in the VLMEvalKit TSV layout (MMBench, MMMB, CCBench) as training records.

The file is parsed by the evaluator's loader (``mmoe.eval.tsv``), so training and evaluation read
the same columns, image pointers and rows. Each valid row becomes a question in the evaluation's
``TRAINING_STYLE`` prompt with the answer letter as the reply; an invalid row becomes a ``Failure``
with a reason code and the loader's message (row, index, column), and reading goes on. The language
comes from the source config or the file name (``mmmb_cn.tsv`` -> ``zh``), else language ID decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from mmoe.data.reasons import Reason, Rejected, malformed
from mmoe.data.records import IMAGE_TOKEN, Failure, ImageRef, Record
from mmoe.data.sources.common import as_failure_or_record
from mmoe.eval.benchmark import MCQRow
from mmoe.eval.errors import BenchmarkError, ImageDataError, MissingImageError
from mmoe.eval.prompts import TRAINING_STYLE, user_message
from mmoe.eval.tsv import open_rows
from mmoe.tokenization.templates import Turn

_META = ("category", "l2-category", "split", "source")


def rejection(error: BenchmarkError) -> Rejected:
    """The data-prep reason for a row the loader refused."""
    if isinstance(error, MissingImageError):
        return Rejected(Reason.MISSING_IMAGE, str(error))
    if isinstance(error, ImageDataError):
        return Rejected(Reason.UNDECODABLE_IMAGE, str(error))
    return malformed(str(error))


def mcq_record(row: MCQRow, language: str | None) -> Record:
    """A validated benchmark row as a one-question conversation; training needs an answer and a choice."""
    if len(row.options) < 2:
        raise malformed("fewer than two options (columns A, B, ...)")
    if row.answer is None:
        raise malformed("missing field 'answer'")
    cells = {column.strip().lower(): value for column, value in row.cells.items()}
    return Record(
        id=str(row.index),
        conversations=[Turn("user", user_message(row, TRAINING_STYLE, IMAGE_TOKEN)), Turn("assistant", row.answer)],
        images=[ImageRef(data=data) for data in row.images],
        language=language,
        metadata={k: cells[k] for k in _META if cells.get(k)},
    )


def read_mcq_tsv(path: str | Path, source: str, language: str | None = None) -> Iterator[Record | Failure]:
    rows = open_rows(path, language)
    for position, item in enumerate(rows):
        obj = rejection(item) if isinstance(item, BenchmarkError) else item
        yield as_failure_or_record(source, position, obj, lambda row: mcq_record(row, rows.declared_language), str(path))
