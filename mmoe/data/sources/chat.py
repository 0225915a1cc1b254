"""Chat records in the LLaVA / ShareGPT family: a list of turns plus image paths or embedded images."""

from __future__ import annotations

from typing import Any

from mmoe.data.reasons import malformed
from mmoe.data.records import IMAGE_TOKEN, ImageRef, Record
from mmoe.data.sources.common import (
    declared_language, image_paths, images_to_front, metadata, record_id, role, text_field,
)
from mmoe.tokenization.templates import Turn

TURN_KEYS = ("conversations", "messages")
IMAGE_KEYS = ("image", "images")
_KNOWN = {"id", "language", "lang", *TURN_KEYS, *IMAGE_KEYS}


def _content(value: Any, field: str, images: list[ImageRef]) -> str:
    """A turn's text; OpenAI-style part lists become text with ``<image>`` where image parts were."""
    if not isinstance(value, list):
        return text_field(value, field)
    pieces = []
    for i, part in enumerate(value):
        where = f"{field}[{i}]"
        if isinstance(part, str):
            pieces.append(text_field(part, where))
            continue
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise malformed(f"field '{where}' must be a string or an object with a 'type'")
        if part["type"] == "text":
            pieces.append(text_field(part.get("text"), f"{where}.text"))
        elif part["type"] in ("image", "image_url"):
            pieces.append(IMAGE_TOKEN)
            ref = part.get("image") or part.get("path") or part.get("image_url")
            if isinstance(ref, dict):
                ref = ref.get("url") or ref.get("path")
            if ref is not None:
                images.append(ImageRef(path=text_field(ref, f"{where}.image", allow_empty=False)))
        else:
            raise malformed(f"field '{where}.type' is {part['type']!r}; expected text, image or image_url")
    return "".join(pieces)


def parse_turns(turns: Any, field: str, images: list[ImageRef]) -> list[Turn]:
    if not isinstance(turns, list):
        raise malformed(f"field '{field}' must be a list, got {type(turns).__name__}")
    out = []
    for i, turn in enumerate(turns):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise malformed(f"field '{where}' must be an object, got {type(turn).__name__}")
        speaker = turn.get("from", turn.get("role"))
        if speaker is None:
            raise malformed(f"missing field '{where}.from'")
        content = turn.get("value", turn.get("content"))
        if content is None:
            raise malformed(f"missing field '{where}.value'")
        out.append(Turn(role(speaker, f"{where}.from"), _content(content, f"{where}.value", images)))
    return out


def parse_chat(
    obj: Any,
    *,
    id_required: bool,
    fallback_id: str,
    language: str | None = None,
    image_first: bool = True,
    add_missing_placeholders: bool = False,
    images: list[ImageRef] | None = None,
) -> Record:
    """One chat record. ``images`` (already decoded refs) replaces the ``image``/``images`` fields."""
    if not isinstance(obj, dict):
        raise malformed(f"record must be a JSON object, got {type(obj).__name__}")
    rid = record_id(obj, required=id_required, fallback=fallback_id)
    key = next((k for k in TURN_KEYS if k in obj and obj[k] is not None), None)
    if key is None:
        raise malformed("missing field 'conversations'")
    inline: list[ImageRef] = []
    turns = parse_turns(obj[key], key, inline)
    refs = list(images or [])
    if images is None:
        for name in IMAGE_KEYS:
            if obj.get(name) not in (None, [], ""):
                refs = [ImageRef(path=p) for p in image_paths(obj[name], name)]
                break
    refs += inline
    if add_missing_placeholders and refs and not any(IMAGE_TOKEN in t.content for t in turns):
        first = next((i for i, t in enumerate(turns) if t.role == "user"), None)
        if first is not None:
            turns[first] = Turn("user", IMAGE_TOKEN * len(refs) + turns[first].content)
    return Record(
        id=rid,
        conversations=images_to_front(turns) if image_first else turns,
        images=refs,
        language=declared_language(obj, language),
        metadata=metadata(obj, _KNOWN),
    )
