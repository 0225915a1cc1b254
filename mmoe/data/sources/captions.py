"""Image-caption pairs (JSONL / JSON array / CSV / TSV) turned into one-turn conversations.

The user turn is the image placeholder, followed by ``prompt`` when one is configured (LLaVA's
stage-1 ``plain`` template uses the image alone); the assistant turn is the caption.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from mmoe.data.jsonstream import iter_json
from mmoe.data.reasons import Rejected, malformed
from mmoe.data.records import IMAGE_TOKEN, Failure, ImageRef, Record
from mmoe.data.sources.common import as_failure_or_record, declared_language, metadata, record_id, require, text_field
from mmoe.data.sources.delimited import read_delimited
from mmoe.tokenization.templates import Turn


def parse_caption(
    obj: Any, *, image_column: str, caption_column: str, prompt: str | None, fallback_id: str, language: str | None
) -> Record:
    if not isinstance(obj, dict):
        raise malformed(f"record must be an object, got {type(obj).__name__}")
    path = text_field(require(obj, image_column), image_column, allow_empty=False)
    caption = text_field(require(obj, caption_column), caption_column)
    user = IMAGE_TOKEN + ("\n" + prompt if prompt else "")
    return Record(
        id=record_id(obj, required=False, fallback=fallback_id),
        conversations=[Turn("user", user), Turn("assistant", caption)],
        images=[ImageRef(path=path)],
        language=declared_language(obj, language),
        metadata=metadata(obj, {"id", "language", "lang", image_column, caption_column}),
    )


def _iter_delimited(path: Path) -> Iterator[tuple[int, Any]]:
    """(position, row as a dict) per record; a row whose field count differs from the header's is a
    ``Rejected`` naming its line (a stray tab never cuts a caption)."""
    header, rows = read_delimited(path)
    for row in rows:
        yield row.number, row.cells if isinstance(row.cells, Rejected) else dict(zip(header, row.cells))


def read_captions(
    path: str | Path,
    source: str,
    language: str | None = None,
    image_column: str = "image",
    caption_column: str = "caption",
    prompt: str | None = None,
) -> Iterator[Record | Failure]:
    path = Path(path)
    rows = _iter_delimited(path) if path.suffix.lower() in (".csv", ".tsv") else iter_json(path)
    for position, obj in rows:
        yield as_failure_or_record(
            source, position, obj,
            lambda o, p=position: parse_caption(
                o, image_column=image_column, caption_column=caption_column, prompt=prompt,
                fallback_id=f"{path.stem}:{p}", language=language,
            ),
            str(path),
        )
