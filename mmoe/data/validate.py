"""Record checks: conversation structure, image placeholders, and the images themselves.

Images go through ``mmoe.images`` (the path policy and decoder training and evaluation use too): the
byte size and the header (format, width, height) are checked before any pixel is decoded, so a huge or
fake file is refused after reading a few bytes.
"""

from __future__ import annotations

from mmoe.data.reasons import Reason, Rejected
from mmoe.data.records import IMAGE_TOKEN, ImageRef, Record
from mmoe.images import ImageError, ImageInfo, ImageLimits, read_file, resolve_in_root, verify

def rejection(error: ImageError, name: str) -> Rejected:
    """The report entry for an image ``mmoe.images`` refused; ``name`` says which image of the record."""
    return Rejected(Reason(error.reason), f"{name} {error.detail}")


def check_conversation(record: Record) -> None:
    """Non-empty, alternating user/assistant after an optional system turn, ending with an answer."""
    turns = record.conversations
    body = [t for t in turns if t.role != "system"]
    if not turns or not body or all(not t.content.strip() for t in body):
        raise Rejected(Reason.EMPTY_CONVERSATION, "no user or assistant turn")
    if any(t.role == "system" for t in turns[1:]):
        raise Rejected(Reason.NON_ALTERNATING_CONVERSATION, "a system turn after the first turn")
    for i, turn in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if turn.role != expected:
            raise Rejected(Reason.NON_ALTERNATING_CONVERSATION, f"turn {i} is {turn.role!r}, expected {expected!r}")
    if body[-1].role != "assistant":
        raise Rejected(Reason.NON_ALTERNATING_CONVERSATION, "the conversation ends with a user turn")
    for i, turn in enumerate(body):
        if turn.role == "assistant" and not turn.content.strip():
            raise Rejected(Reason.EMPTY_ASSISTANT_TURN, f"assistant turn {i // 2} is empty")
    placeholders = sum(t.content.count(IMAGE_TOKEN) for t in turns)
    if placeholders != len(record.images):
        raise Rejected(
            Reason.IMAGE_PLACEHOLDER_MISMATCH,
            f"{placeholders} {IMAGE_TOKEN} placeholder(s) for {len(record.images)} image(s)",
        )


class ImageChecker:
    """Checks images against ``ImageLimits``; file results are cached by path (images are often shared)."""

    def __init__(self, limits: ImageLimits) -> None:
        self.limits = limits
        self._cache: dict[tuple[str, str], ImageError | ImageInfo] = {}

    def _check_file(self, root: str, path: str) -> ImageError | ImageInfo:
        try:
            resolved = resolve_in_root(root, path)
            return verify(read_file(resolved, self.limits, path), self.limits, path)
        except ImageError as exc:
            return exc

    def check(self, ref: ImageRef, root: str | None, name: str) -> ImageInfo:
        """Size and decoding conversions of a record's image, or ``Rejected`` naming ``name`` and the reason."""
        try:
            if ref.data is not None:
                return verify(ref.data, self.limits, name)
            key = (root or ".", ref.path or "")
            cached = self._cache.get(key)
            if cached is None:
                cached = self._cache[key] = self._check_file(*key)
            if isinstance(cached, ImageError):
                raise cached
            return cached
        except ImageError as exc:
            raise rejection(exc, name) from None
