"""Helpers every reader uses to turn loosely typed input into a ``Record`` or a precise rejection."""

from __future__ import annotations

import re
from typing import Any

from mmoe.data.reasons import Reason, Rejected, malformed
from mmoe.data.records import IMAGE_TOKEN, Failure, Record
from mmoe.languages import iso_language
from mmoe.tokenization.templates import Turn

_SURROGATE = re.compile("[\ud800-\udfff]")

ROLES = {
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "bot": "assistant", "model": "assistant", "chatgpt": "assistant",
    "system": "system",
}


def text_field(value: Any, field: str, *, allow_empty: bool = True) -> str:
    """A string that is valid Unicode (non-UTF-8 input bytes show up as surrogates and are refused)."""
    if not isinstance(value, str):
        raise malformed(f"field '{field}' must be a string, got {type(value).__name__}")
    if _SURROGATE.search(value):
        raise malformed(f"field '{field}' holds bytes that are not valid UTF-8")
    if not allow_empty and not value.strip():
        raise malformed(f"field '{field}' is empty")
    return value


def require(obj: Any, field: str) -> Any:
    if not isinstance(obj, dict):
        raise malformed(f"record must be a JSON object, got {type(obj).__name__}")
    if field not in obj or obj[field] is None:
        raise malformed(f"missing field '{field}'")
    return obj[field]


def readable_id(obj: Any) -> str | None:
    """The record's id when it can be read at all (for the report), else None."""
    value = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    value = str(value)
    return None if _SURROGATE.search(value) else value


def record_id(obj: dict, *, required: bool, fallback: str) -> str:
    if "id" not in obj or obj["id"] is None:
        if required:
            raise malformed("missing field 'id'")
        return fallback
    value = obj["id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise malformed(f"field 'id' must be a string or an integer, got {type(value).__name__}")
    return text_field(str(value), "id", allow_empty=False)


def role(value: Any, field: str) -> str:
    name = text_field(value, field).strip().lower()
    if name not in ROLES:
        raise malformed(f"field '{field}' has unknown role {value!r} (expected one of {', '.join(sorted(ROLES))})")
    return ROLES[name]


def image_paths(value: Any, field: str) -> list[str]:
    """One path or a list of paths."""
    items = value if isinstance(value, list) else [value]
    return [text_field(item, f"{field}[{i}]" if isinstance(value, list) else field, allow_empty=False) for i, item in enumerate(items)]


def images_to_front(turns: list[Turn]) -> list[Turn]:
    """LLaVA/Parrot convention: each turn's ``<image>`` placeholders move to its start, one per line."""
    out = []
    for turn in turns:
        count = turn.content.count(IMAGE_TOKEN)
        if count and not turn.content.startswith(IMAGE_TOKEN * count + "\n"):
            rest = turn.content.replace(IMAGE_TOKEN, "").strip()
            turn = Turn(turn.role, (IMAGE_TOKEN + "\n") * count + rest if rest else IMAGE_TOKEN * count)
        out.append(turn)
    return out


def declared_language(obj: dict, default: str | None) -> str | None:
    """The record's own ``language`` (or ``lang``) as a normalised ISO 639-1 code, else ``default``;
    anything else there is refused, naming the field and the value."""
    for key in ("language", "lang"):
        value = obj.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        text = text_field(value, key)
        code = iso_language(text)
        if code is None:
            raise Rejected(Reason.UNKNOWN_LANGUAGE, f"field '{key}' is {text!r}, not an ISO 639-1 language code (two letters, such as 'pt')")
        return code
    return default


def metadata(obj: dict, known: set[str]) -> dict[str, Any]:
    """The fields a reader does not interpret, kept as they are (and refused if not valid UTF-8)."""
    import json

    extra = {k: v for k, v in obj.items() if k not in known}
    if extra:
        text_field(json.dumps(extra, ensure_ascii=False, default=str), "metadata")
    return extra


def failure(source: str, position: int, obj: Any, error: Rejected, file: str = "") -> Failure:
    return Failure(source=source, position=position, id=readable_id(obj), error=error, file=file)


def as_failure_or_record(source: str, position: int, obj: Any, build, file: str = "") -> Record | Failure:
    """Run ``build(obj)``; a ``Rejected`` becomes a ``Failure`` that names the record."""
    if isinstance(obj, Rejected):
        return Failure(source=source, position=position, id=None, error=obj, file=file)
    try:
        record = build(obj)
    except Rejected as exc:
        return failure(source, position, obj, exc, file)
    record.source, record.position, record.file = source, position, file
    return record
