"""Record checks: conversation structure, image placeholders, and the images themselves.

Images are opened lazily: the byte size and the header (format, width, height) are checked before
any pixel is decoded, so a huge or fake file is refused after reading a few bytes.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

from mmoe.data.reasons import Reason, Rejected
from mmoe.data.records import IMAGE_TOKEN, ImageRef, Record


@dataclass(frozen=True)
class ImageLimits:
    min_side: int = 8
    max_pixels: int = 89_478_485  # Pillow's own decompression-bomb threshold
    max_bytes: int = 64 << 20
    decode: bool = True  # decode the pixels too (catches truncated files)


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


def resolve_image_path(root: str, relative: str) -> str:
    """``root/relative``, refusing anything that leaves ``root`` (``../``, absolute paths)."""
    base = os.path.normpath(os.path.abspath(root))
    full = os.path.normpath(os.path.join(base, relative))
    if full != base and not full.startswith(base + os.sep):
        raise Rejected(Reason.IMAGE_OUTSIDE_ROOT, f"{relative!r} resolves outside the image root {root}")
    return full


def _check_stream(stream: BinaryIO, nbytes: int, limits: ImageLimits, name: str) -> tuple[int, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(stream)
        except Image.DecompressionBombError as exc:
            raise Rejected(Reason.IMAGE_TOO_LARGE, f"{name}: {exc}") from None
        except Exception as exc:  # Pillow raises many types for a file that is not an image
            raise Rejected(Reason.UNDECODABLE_IMAGE, f"{name}: {type(exc).__name__}: {exc}") from None
        if nbytes > limits.max_bytes:
            raise Rejected(Reason.IMAGE_TOO_LARGE, f"{name}: {nbytes} bytes (limit {limits.max_bytes})")
        width, height = image.size
        if width * height > limits.max_pixels:
            raise Rejected(Reason.IMAGE_TOO_LARGE, f"{name}: {width}x{height} pixels (limit {limits.max_pixels})")
        if min(width, height) < limits.min_side:
            raise Rejected(Reason.IMAGE_TOO_SMALL, f"{name}: {width}x{height} (minimum side {limits.min_side})")
        if limits.decode:
            try:
                image.verify()
                stream.seek(0)
                image = Image.open(stream)
                if image.format == "JPEG":
                    image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()
            except Exception as exc:
                reason = Reason.TRUNCATED_IMAGE if "truncated" in str(exc).lower() else Reason.UNDECODABLE_IMAGE
                raise Rejected(reason, f"{name}: {type(exc).__name__}: {exc}") from None
    return width, height


class ImageChecker:
    """Checks images against ``ImageLimits``; file results are cached by path (images are often shared)."""

    def __init__(self, limits: ImageLimits) -> None:
        self.limits = limits
        self._cache: dict[str, Rejected | tuple[int, int]] = {}

    def check_file(self, path: str) -> tuple[int, int]:
        cached = self._cache.get(path)
        if cached is None:
            cached = self._cache[path] = self._check_file(path)
        if isinstance(cached, Rejected):
            raise cached
        return cached

    def _check_file(self, path: str) -> Rejected | tuple[int, int]:
        try:
            if not os.path.isfile(path):
                raise Rejected(Reason.MISSING_IMAGE, f"{path} does not exist")
            with open(path, "rb") as f:
                return _check_stream(f, os.fstat(f.fileno()).st_size, self.limits, path)
        except Rejected as exc:
            return exc
        except OSError as exc:
            return Rejected(Reason.MISSING_IMAGE, f"{path}: {exc.strerror or exc}")

    def check_bytes(self, data: bytes, name: str) -> tuple[int, int]:
        return _check_stream(io.BytesIO(data), len(data), self.limits, name)

    def check(self, ref: ImageRef, root: str | None, name: str) -> tuple[int, int]:
        if ref.data is not None:
            return self.check_bytes(ref.data, name)
        return self.check_file(resolve_image_path(root or ".", ref.path or ""))
