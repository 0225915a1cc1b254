"""Multiple-choice benchmarks in the VLMEvalKit TSV layout (MMBench, MMMB, CCBench) as training records.

The file is parsed by the evaluator's loader (``mmoe.eval.tsv``), so training and evaluation read
the same columns, image pointers and rows; the file itself is split record by record
(``mmoe.data.sources.delimited``), so a row with a stray tab or a runaway quote is reported and the
others are kept. Each valid row becomes a question in the evaluation's
``TRAINING_STYLE`` prompt with the answer letter as the reply; an invalid row becomes a ``Failure``
with a reason code and the loader's message (row, index, column), and reading goes on. The language
comes from the source config or the file name (``mmmb_cn.tsv`` -> ``zh``), else language ID decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pandas as pd

from mmoe.data.reasons import Reason, Rejected, malformed
from mmoe.data.records import IMAGE_TOKEN, Failure, ImageRef, Record
from mmoe.data.sources.common import as_failure_or_record
from mmoe.data.sources.delimited import read_delimited
from mmoe.eval.benchmark import MCQRow
from mmoe.eval.errors import BenchmarkError, ImageDataError, MissingImageError
from mmoe.eval.prompts import TRAINING_STYLE, user_message
from mmoe.eval.tsv import BenchmarkRows, open_rows
from mmoe.languages import declared_language
from mmoe.tokenization.templates import Turn

_META = ("category", "l2-category", "split", "source")


def rejection(error: BenchmarkError) -> Rejected:
    """The data-prep reason for a row the loader refused."""
    if isinstance(error, (MissingImageError, ImageDataError)):
        return Rejected(Reason(error.reason), str(error))
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


def _tolerant_rows(path: Path, language: str | None, image_root: Path | None) -> tuple[BenchmarkRows, dict[int, Rejected]]:
    """The evaluator's row validation over a TSV/CSV read record by record: a record that cannot be split
    into the header's columns becomes an empty placeholder row (so row numbers stay the file's) and its
    own rejection."""
    header, records = read_delimited(path)
    if len(set(header)) != len(header):
        raise BenchmarkError(str(path), f"repeated column names in the header: {header}")
    cells, bad = [], {}
    for row in records:
        if isinstance(row.cells, Rejected):
            bad[row.number] = row.cells
            cells.append([""] * len(header))
        else:
            cells.append(row.cells)
    frame = pd.DataFrame(cells, columns=header, dtype=str)
    root = image_root if image_root is not None else path.parent
    return BenchmarkRows(frame, str(path), declared_language(language, path), base_dir=root), bad


def read_mcq_tsv(path: str | Path, source: str, language: str | None = None, image_root: str | Path | None = None) -> Iterator[Record | Failure]:
    """Every row as a record or a failure; ``image_path`` cells must name files inside ``image_root``
    (default: the file's directory)."""
    path = Path(path)
    root = Path(image_root) if image_root is not None else None
    if path.suffix.lower() in (".tsv", ".csv"):
        rows, bad = _tolerant_rows(path, language, root)
    else:
        rows, bad = open_rows(path, language, image_root=root), {}
    for position, item in enumerate(rows):
        obj = bad.get(position) or (rejection(item) if isinstance(item, BenchmarkError) else item)
        yield as_failure_or_record(source, position, obj, lambda row: mcq_record(row, rows.declared_language), str(path))
