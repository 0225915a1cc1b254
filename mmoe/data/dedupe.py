"""Exact de-duplication: the same images and the same turns (whitespace-normalised) count once."""

from __future__ import annotations

import hashlib
import re

from mmoe.data.records import Record

_SPACE = re.compile(r"\s+")


def record_key(record: Record) -> int:
    """A 64-bit fingerprint of a record's images and turns."""
    h = hashlib.blake2b(digest_size=8)
    for image in record.images:
        h.update(image.key().encode("utf-8", "surrogatepass") + b"\0")
    h.update(b"\1")
    for turn in record.conversations:
        h.update(turn.role.encode() + b"\0" + _SPACE.sub(" ", turn.content.strip()).encode("utf-8", "surrogatepass") + b"\0")
    return int.from_bytes(h.digest(), "little")


class Deduper:
    """Remembers fingerprints of kept records (8 bytes each in a set)."""

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def seen(self, key: int) -> bool:
        """True if ``key`` was seen before; otherwise remember it."""
        if key in self._seen:
            return True
        self._seen.add(key)
        return False
