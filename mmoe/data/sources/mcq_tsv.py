"""Multiple-choice benchmarks in the VLMEvalKit TSV layout (MMBench, MMMB, CCBench) as training records.

Columns: ``index``, ``image`` (base64; a short cell is the ``index`` of the row holding the image;
a ``[...]`` cell is a list of base64 images), ``question``, optional ``hint``, option columns
``A``..``Z``, ``answer`` (a letter). Each row becomes a question in Parrot's MCQ prompt with the
answer letter as the reply. The language comes from the source config or the file name
(``mmmb_cn.tsv`` -> ``zh``).
"""

from __future__ import annotations

import ast
import base64
import binascii
import re
import string
from pathlib import Path
from typing import Iterator

import pandas as pd

from mmoe.data.languages import normalize_language
from mmoe.data.mcq import mcq_user_turn
from mmoe.data.reasons import Reason, Rejected, malformed
from mmoe.data.records import Failure, ImageRef, Record
from mmoe.data.sources.common import as_failure_or_record, text_field
from mmoe.tokenization.templates import Turn

POINTER_MAX_CHARS = 64
_LANG_SUFFIX = re.compile(r"_(en|cn|zh|pt|ar|tr|ru)$", re.IGNORECASE)
_META = ("category", "l2-category", "split", "source")


def language_from_filename(path: str | Path) -> str | None:
    match = _LANG_SUFFIX.search(Path(path).stem)
    return normalize_language(match.group(1)) if match else None


def _decode(cell: str, where: str) -> list[ImageRef]:
    cells = ast.literal_eval(cell) if cell.startswith("[") else [cell]
    refs = []
    for item in cells:
        try:
            refs.append(ImageRef(data=base64.b64decode(item, validate=False)))
        except (binascii.Error, ValueError, TypeError) as exc:
            raise Rejected(Reason.UNDECODABLE_IMAGE, f"{where}: not base64 ({exc})") from None
    return refs


def parse_mcq_row(row: dict, images_by_index: dict[str, str], language: str | None) -> Record:
    index = text_field(row.get("index", ""), "index", allow_empty=False).strip()
    cell = row.get("image", "")
    if not cell:
        raise malformed("missing field 'image'")
    if len(cell) <= POINTER_MAX_CHARS:
        if cell.strip() not in images_by_index:
            raise malformed(f"field 'image' points to index {cell.strip()!r}, which has no image row")
        cell = images_by_index[cell.strip()]
    question = text_field(row.get("question", ""), "question", allow_empty=False)
    options = {c: text_field(row[c], c) for c in string.ascii_uppercase if row.get(c, "") not in ("", None)}
    if len(options) < 2:
        raise malformed("fewer than two options (columns A, B, ...)")
    answer = text_field(row.get("answer", ""), "answer").strip()
    if not answer:
        raise malformed("missing field 'answer'")
    if answer not in options:
        raise malformed(f"field 'answer' is {answer!r}, not one of the options {', '.join(options)}")
    hint = text_field(row.get("hint", ""), "hint").strip() or None
    images = _decode(cell, "image")
    return Record(
        id=index,
        conversations=[
            Turn("user", mcq_user_turn(question, options, language, hint, images=len(images))),
            Turn("assistant", answer),
        ],
        images=images,
        language=language,
        metadata={k: row[k] for k in _META if row.get(k)},
    )


def read_mcq_tsv(path: str | Path, source: str, language: str | None = None) -> Iterator[Record | Failure]:
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, encoding_errors="surrogateescape")
    table.columns = [c if len(c) == 1 and c.isupper() else c.lower() for c in table.columns]
    lang = normalize_language(language) or language_from_filename(path)
    images_by_index = {
        str(i).strip(): img for i, img in zip(table.get("index", []), table.get("image", [])) if len(img) > POINTER_MAX_CHARS
    }
    for position, row in enumerate(table.to_dict("records")):
        yield as_failure_or_record(source, position, row, lambda r: parse_mcq_row(r, images_by_index, lang), str(path))
