"""The unified record every source reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmoe.data.reasons import Rejected
from mmoe.tokenization.templates import Turn

IMAGE_TOKEN = "<image>"


@dataclass(frozen=True)
class ImageRef:
    """An image as a file path (relative to the source's image root) or as encoded bytes."""

    path: str | None = None
    data: bytes | None = None

    def key(self) -> str:
        """Identity used for de-duplication."""
        if self.path is not None:
            return "path:" + self.path
        import hashlib

        return "sha1:" + hashlib.sha1(self.data or b"").hexdigest()


@dataclass
class Record:
    id: str
    conversations: list[Turn]
    images: list[ImageRef] = field(default_factory=list)
    language: str | None = None  # declared by the source (None: detect)
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    position: int = 0  # 0-based position of the record in its file
    file: str = ""


@dataclass
class Failure:
    """A record that could not be used: where it was, and why."""

    source: str
    position: int
    id: str | None
    error: Rejected
    file: str = ""


def record_text(record: Record) -> str:
    """All turn contents with image placeholders removed (for language ID)."""
    return "\n".join(t.content.replace(IMAGE_TOKEN, " ") for t in record.conversations)
