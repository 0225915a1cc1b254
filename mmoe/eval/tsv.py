"""Load a benchmark in the TSV layout VLMEvalKit reads (MMBench, MMBench V11, CCBench, MMMB, Parrot's
multilingual MMBench) and validate every row; errors name the file, row, index and column.

Columns: ``index``, ``image`` (base64; a cell of at most 64 characters is the index of the row that
holds the image; a ``[...]`` list literal holds several images) or ``image_path``, ``question``,
``hint``, option columns ``A``, ``B``, ..., ``answer`` (absent in test splits), ``category``,
``l2-category``/``L2-category``, ``split``, optionally ``g_index``. Rows are numbered from 1 (the
first line after the header).
"""

from __future__ import annotations

import ast
import base64
import binascii
import io
import string
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from mmoe.eval import languages
from mmoe.eval.benchmark import Benchmark, MCQRow
from mmoe.eval.errors import BenchmarkError
from mmoe.eval.table import normalised_names, read_table

POINTER_MAX_CHARS = 64  # VLMEvalKit: an image cell this short names another row


def load_benchmark(path: str | Path, language: str | None = None, images: bool = True) -> Benchmark:
    """Read and validate ``path``. ``language`` wins over the file name, which wins over the text's script.
    ``images=False`` skips the image columns (for scoring files that have none, such as predictions)."""
    path = Path(path)
    frame = read_table(path)
    name = path.name.split(".")[0]
    lang = languages.canonical(language) if language else languages.from_file_name(path)
    return benchmark_from_frame(frame, name, str(path), lang, base_dir=path.parent, images=images)


def benchmark_from_frame(
    frame: pd.DataFrame,
    name: str,
    source: str,
    language: str | None = None,
    base_dir: Path | None = None,
    images: bool = True,
) -> Benchmark:
    """Validate a frame of string cells in the TSV layout (also used for Hugging Face datasets)."""
    names = normalised_names(frame, source)
    for required in ("index", "question"):
        if required not in names:
            raise BenchmarkError(source, f"missing required column {required!r}", column=required)
    if images and "image" not in names and "image_path" not in names:
        raise BenchmarkError(source, "missing column 'image' (base64) or 'image_path'", column="image")
    letters = _option_letters(names, source)
    if language is None:
        language = languages.from_text(frame[names["question"]].astype(str).head(200))
    has_answers = "answer" in names and bool(frame[names["answer"]].astype(str).str.strip().ne("").any())
    records = frame.to_dict("records")
    indices = _indices(records, names, source)
    resolver = _ImageResolver(records, names, indices, source, base_dir or Path(".")) if images else None
    columns = [c for c in map(str, frame.columns) if c != names.get("image")]
    rows = [
        _row(record, i + 1, indices[i], names, letters, has_answers, language, resolver, source, columns)
        for i, record in enumerate(records)
    ]
    return Benchmark(name, source, language, rows, columns, names, has_answers)


def _option_letters(names: dict[str, str], source: str) -> list[str]:
    present = [c for c in string.ascii_uppercase if c in names]
    if not present:
        raise BenchmarkError(source, "no option columns (A, B, ...)", column="A")
    expected = list(string.ascii_uppercase[: string.ascii_uppercase.index(present[-1]) + 1])
    missing = [c for c in expected if c not in present]
    if missing:
        raise BenchmarkError(source, f"missing option column(s) {', '.join(missing)} (found {', '.join(present)})", column=missing[0])
    return present


def _cell(record: dict, names: dict[str, str], key: str) -> str:
    column = names.get(key)
    if column is None:
        return ""
    value = record[column]
    return "" if value is None else str(value).strip()


def _indices(records: list[dict], names: dict[str, str], source: str) -> list[int]:
    seen: dict[int, int] = {}
    out = []
    for i, record in enumerate(records, start=1):
        text = _cell(record, names, "index")
        try:
            value = float(text)
            if not value.is_integer():
                raise ValueError
            index = int(value)
        except ValueError:
            raise BenchmarkError(source, f"index {text!r} is not an integer", row=i, column=names["index"]) from None
        if index in seen:
            raise BenchmarkError(source, f"index {index} repeats row {seen[index]}", row=i, index=index, column=names["index"])
        seen[index] = i
        out.append(index)
    return out


class _ImageResolver:
    """Decode each row's image cell once; follow pointer cells to the row that holds the data."""

    def __init__(self, records: list[dict], names: dict[str, str], indices: list[int], source: str, base_dir: Path):
        self.records, self.names, self.source, self.base_dir = records, names, source, base_dir
        self.position = {index: i for i, index in enumerate(indices)}
        self.indices = indices
        self.cache: dict[int, tuple[bytes, ...]] = {}

    def __call__(self, i: int) -> tuple[bytes, ...]:
        chain: list[int] = []
        j = i
        while j not in self.cache:
            if j in chain:
                raise self._error(i, "image pointers form a cycle")
            chain.append(j)
            target = self._pointer(j)
            if target is None:
                self.cache[j] = self._decode(j)
            else:
                j = target
        for k in chain:
            self.cache[k] = self.cache[j]
        return self.cache[i]

    def _error(self, i: int, message: str) -> BenchmarkError:
        column = self.names.get("image", self.names.get("image_path"))
        return BenchmarkError(self.source, message, row=i + 1, index=self.indices[i], column=column)

    def _pointer(self, i: int) -> int | None:
        if "image" not in self.names:
            return None
        cell = _cell(self.records[i], self.names, "image")
        if not cell:
            raise self._error(i, "empty image cell")
        if len(cell) > POINTER_MAX_CHARS or cell.startswith("["):
            return None
        try:
            target = int(float(cell))
        except ValueError:
            raise self._error(i, f"{cell!r} is neither base64 image data nor the index of another row") from None
        if target not in self.position:
            raise self._error(i, f"image points to index {target}, which no row has")
        return self.position[target]

    def _decode(self, i: int) -> tuple[bytes, ...]:
        if "image" not in self.names:
            return tuple(self._read_path(i, p) for p in self._items(i, _cell(self.records[i], self.names, "image_path")))
        return tuple(self._base64(i, item) for item in self._items(i, _cell(self.records[i], self.names, "image")))

    def _items(self, i: int, cell: str) -> list[str]:
        if not cell:
            raise self._error(i, "empty image cell")
        if not cell.startswith("["):
            return [cell]
        try:
            items = ast.literal_eval(cell)
        except (ValueError, SyntaxError):
            raise self._error(i, "image cell starts with '[' but is not a list of strings") from None
        if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
            raise self._error(i, "image cell starts with '[' but is not a non-empty list of strings")
        return items

    def _base64(self, i: int, text: str) -> bytes:
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self._error(i, f"bad base64 image data ({exc})") from None
        return self._check_image(i, data)

    def _read_path(self, i: int, text: str) -> bytes:
        path = Path(text) if Path(text).is_absolute() else self.base_dir / text
        if not path.is_file():
            raise self._error(i, f"image file {str(path)!r} not found")
        return self._check_image(i, path.read_bytes())

    def _check_image(self, i: int, data: bytes) -> bytes:
        try:
            Image.open(io.BytesIO(data)).close()  # parses the header only
        except (UnidentifiedImageError, OSError) as exc:
            raise self._error(i, f"image data is not a readable image ({exc})") from None
        return data


def _row(
    record: dict,
    row: int,
    index: int,
    names: dict[str, str],
    letters: list[str],
    has_answers: bool,
    language: str,
    images: _ImageResolver | None,
    source: str,
    columns: list[str],
) -> MCQRow:
    def fail(message: str, key: str) -> BenchmarkError:
        return BenchmarkError(source, message, row=row, index=index, column=names.get(key, key))

    question = _cell(record, names, "question")
    if not question:
        raise fail("empty question", "question")
    options = {letter: _cell(record, names, letter) for letter in letters}
    options = {k: v for k, v in options.items() if v}
    if not options:
        raise fail(f"no option text in columns {', '.join(letters)}", letters[0])
    answer = None
    if has_answers:
        answer = _cell(record, names, "answer")
        if not answer:
            raise fail("empty answer (other rows have answers)", "answer")
        if answer not in letters:
            raise fail(f"answer {answer!r} is not an option letter ({', '.join(letters)})", "answer")
        if answer not in options:
            raise fail(f"answer {answer!r} has no option: column {answer!r} is empty in this row", "answer")
    g_text = _cell(record, names, "g_index")
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
        images=images(row - 1) if images else (),
        hint=_hint(_cell(record, names, "hint")),
        answer=answer,
        category=_cell(record, names, "category") or None,
        l2_category=_cell(record, names, "l2-category") or None,
        split=_cell(record, names, "split") or None,
        language=language,
        g_index=g_index,
        row=row,
        cells={c: ("" if record[c] is None else str(record[c])) for c in columns},
    )


def _hint(text: str) -> str | None:
    return None if not text or text.lower() == "nan" else text
