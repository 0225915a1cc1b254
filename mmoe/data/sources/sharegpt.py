"""ShareGPT-style JSON / JSONL: ``messages`` (``role``/``content``, content a string or a list of parts).

``conversations`` with ``from``/``value`` is read too; ``id`` is optional; images come from
``images``/``image`` or from image parts. With images but no ``<image>`` in the text, the
placeholders are put at the start of the first user turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from mmoe.data.jsonstream import iter_json
from mmoe.data.records import Failure, Record
from mmoe.data.sources.chat import parse_chat
from mmoe.data.sources.common import as_failure_or_record


def read_sharegpt(path: str | Path, source: str, language: str | None = None, image_first: bool = True) -> Iterator[Record | Failure]:
    stem = Path(path).stem
    for position, obj in iter_json(path):
        yield as_failure_or_record(
            source, position, obj,
            lambda o, p=position: parse_chat(
                o, id_required=False, fallback_id=f"{stem}:{p}", language=language,
                image_first=image_first, add_missing_placeholders=True,
            ),
            str(path),
        )
