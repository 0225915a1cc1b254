"""LLaVA JSON (array or JSONL): ``id``, optional ``image`` (a path or a list), ``conversations`` (``from``/``value``)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from mmoe.data.jsonstream import iter_json
from mmoe.data.records import Failure, Record
from mmoe.data.sources.chat import parse_chat
from mmoe.data.sources.common import as_failure_or_record


def read_llava(path: str | Path, source: str, language: str | None = None, image_first: bool = True) -> Iterator[Record | Failure]:
    """LLaVA records need ``id`` and ``conversations``; placeholders must already be in the text."""
    for position, obj in iter_json(path):
        yield as_failure_or_record(
            source, position, obj,
            lambda o: parse_chat(o, id_required=True, fallback_id="", language=language, image_first=image_first),
            str(path),
        )
