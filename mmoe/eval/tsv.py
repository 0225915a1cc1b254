"""Load a benchmark in the TSV layout VLMEvalKit reads (MMBench, MMBench V11, CCBench, MMMB, Parrot's
multilingual MMBench) and validate every row; errors name the file, row, index and column.

Columns: ``index``, ``image`` (base64; a cell of at most 64 characters is the index of the row that
holds the image; a ``[...]`` list literal holds several images) or ``image_path``, ``question``,
``hint``, option columns ``A``, ``B``, ..., ``answer`` (absent in test splits), ``category``,
``l2-category``/``L2-category``, ``split``, optionally ``g_index``. Rows are numbered from 1 (the
first line after the header).

``BenchmarkRows`` checks the columns up front and then validates one row at a time, yielding each
row or its error: evaluation raises the first error (``load_benchmark``), data preparation reports
each bad row and goes on (``mmoe.data.sources.mcq_tsv``).
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from mmoe.eval.benchmark import Benchmark, MCQRow
from mmoe.eval.errors import BenchmarkError
from mmoe.eval.table import normalised_names, parse_index, read_table
from mmoe.eval.tsv_images import ImageResolver, cell
from mmoe.images import EVAL_LIMITS, ImageLimits
from mmoe.languages import declared_language, language_from_script


class BenchmarkRows:
    """A frame of string cells in the TSV layout. Column problems raise at once; iterating yields each
    row as an ``MCQRow`` or, when the row is invalid, the ``BenchmarkError`` that says why.

    ``language`` is the declared one (None: the questions' script decides, see ``language``)."""

    def __init__(
        self,
        frame: pd.DataFrame,
        source: str,
        language: str | None = None,
        base_dir: Path | None = None,
        images: bool = True,
        *,
        image_limits: ImageLimits = EVAL_LIMITS,
    ) -> None:
        self.source = source
        self.names = names = normalised_names(frame, source)
        for required in ("index", "question"):
            if required not in names:
                raise BenchmarkError(source, f"missing required column {required!r}", column=required)
        if images and "image" not in names and "image_path" not in names:
            raise BenchmarkError(source, "missing column 'image' (base64) or 'image_path'", column="image")
        self.letters = _option_letters(names, source)
        self.declared_language = language
        self.language = language or language_from_script(frame[names["question"]].astype(str).head(200))
        self.has_answers = "answer" in names and bool(frame[names["answer"]].astype(str).str.strip().ne("").any())
        self.columns = [c for c in map(str, frame.columns) if c != names.get("image")]
        self._records = frame.to_dict("records")
        self._indices = _indices(self._records, names, source)
        usable = [index if isinstance(index, int) else None for index in self._indices]
        self._images = ImageResolver(self._records, names, usable, source, base_dir or Path("."), limits=image_limits) if images else None

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[MCQRow | BenchmarkError]:
        for i, record in enumerate(self._records):
            index = self._indices[i]
            if isinstance(index, BenchmarkError):
                yield index
                continue
            try:
                yield self._row(record, i + 1, index)
            except BenchmarkError as exc:
                yield exc

    def benchmark(self, name: str) -> Benchmark:
        """Every row, strictly: the first invalid row raises its error."""
        rows = []
        for item in self:
            if isinstance(item, BenchmarkError):
                raise item
            rows.append(item)
        return Benchmark(name, self.source, self.language, rows, self.columns, self.names, self.has_answers)

    def _row(self, record: dict, row: int, index: int) -> MCQRow:
        names = self.names

        def fail(message: str, key: str) -> BenchmarkError:
            return BenchmarkError(self.source, message, row=row, index=index, column=names.get(key, key))

        question = text_cell(record, names, "question")
        if not question.strip():
            raise fail("empty question", "question")
        options = {letter: text_cell(record, names, letter) for letter in self.letters}
        options = {k: v for k, v in options.items() if v.strip()}
        if not options:
            raise fail(f"no option text in columns {', '.join(self.letters)}", self.letters[0])
        answer = None
        if self.has_answers:
            answer = cell(record, names, "answer")
            if not answer:
                raise fail("empty answer (other rows have answers)", "answer")
            if answer not in self.letters:
                raise fail(f"answer {answer!r} is not an option letter ({', '.join(self.letters)})", "answer")
            if answer not in options:
                raise fail(f"answer {answer!r} has no option: column {answer!r} is empty in this row", "answer")
        g_text = cell(record, names, "g_index")
        g_index = None
        if g_text:
            try:
                g_index = int(float(g_text))
            except ValueError:
                raise fail(f"g_index {g_text!r} is not an integer", "g_index") from None
        return MCQRow(
            index=index,
            question=question,
            options=options,
            images=self._images(row - 1) if self._images else (),
            hint=_hint(text_cell(record, names, "hint")),
            answer=answer,
            category=cell(record, names, "category") or None,
            l2_category=cell(record, names, "l2-category") or None,
            split=cell(record, names, "split") or None,
            language=self.language,
            g_index=g_index,
            row=row,
            cells={c: ("" if record[c] is None else str(record[c])) for c in self.columns},
        )


def open_rows(path: str | Path, language: str | None = None, images: bool = True, image_root: str | Path | None = None,
              *, image_limits: ImageLimits = EVAL_LIMITS) -> BenchmarkRows:
    """Read ``path`` and check its columns. ``language`` wins over the file name, which wins over the
    questions' script. ``images=False`` skips the image columns (for files that have none). ``image_path``
    cells must name files inside ``image_root`` (default: the file's directory). Every image passes
    ``image_limits`` (by default decoded in full)."""
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    return BenchmarkRows(read_table(path), str(path), declared_language(language, path), base_dir=root, images=images,
                         image_limits=image_limits)


def load_benchmark(path: str | Path, language: str | None = None, images: bool = True, *, image_limits: ImageLimits = EVAL_LIMITS) -> Benchmark:
    """Read and validate ``path`` (see ``open_rows``); the first invalid row raises."""
    return open_rows(path, language, images, image_limits=image_limits).benchmark(Path(path).name.split(".")[0])


def benchmark_from_frame(
    frame: pd.DataFrame,
    name: str,
    source: str,
    language: str | None = None,
    base_dir: Path | None = None,
    images: bool = True,
    *,
    image_limits: ImageLimits = EVAL_LIMITS,
) -> Benchmark:
    """Validate a frame of string cells in the TSV layout (also used for Hugging Face datasets)."""
    return BenchmarkRows(frame, source, language, base_dir, images, image_limits=image_limits).benchmark(name)


def _option_letters(names: dict[str, str], source: str) -> list[str]:
    present = [c for c in string.ascii_uppercase if c in names]
    if not present:
        raise BenchmarkError(source, "no option columns (A, B, ...)", column="A")
    expected = list(string.ascii_uppercase[: string.ascii_uppercase.index(present[-1]) + 1])
    missing = [c for c in expected if c not in present]
    if missing:
        raise BenchmarkError(source, f"missing option column(s) {', '.join(missing)} (found {', '.join(present)})", column=missing[0])
    return present


def _indices(records: list[dict], names: dict[str, str], source: str) -> list[int | BenchmarkError]:
    """Each row's ``index``, or the error of a row whose index is not an integer or repeats an earlier one."""
    seen: dict[int, int] = {}
    out: list[int | BenchmarkError] = []
    for i, record in enumerate(records, start=1):
        text = cell(record, names, "index")
        try:
            index = parse_index(text)
        except ValueError:
            out.append(BenchmarkError(source, f"index {text!r} is not an integer", row=i, column=names["index"]))
            continue
        if index in seen:
            out.append(BenchmarkError(source, f"index {index} repeats row {seen[index]}", row=i, index=index, column=names["index"]))
            continue
        seen[index] = i
        out.append(index)
    return out


def text_cell(record: dict, names: dict[str, str], key: str) -> str:
    """A text cell as the file holds it: surrounding whitespace is kept, as VLMEvalKit's prompts keep it."""
    column = names.get(key)
    value = None if column is None else record[column]
    return "" if value is None else str(value)


def _hint(text: str) -> str | None:
    """No hint for an empty cell or the text ``nan`` (pandas' missing value), as VLMEvalKit decides."""
    return None if not text.strip() or text.strip().lower() == "nan" else text
