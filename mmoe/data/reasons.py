"""Why a record was rejected: stable reason codes and the exception that carries one."""

from __future__ import annotations

from enum import Enum


class Reason(str, Enum):
    """Stable codes written to ``report.json``; never rename a value."""

    MALFORMED_RECORD = "malformed_record"  # invalid JSON / non-UTF-8 bytes / missing field / wrong type
    UNKNOWN_LANGUAGE = "unknown_language"  # a language field that is not an ISO 639-1 code
    MISSING_IMAGE = "missing_image"
    IMAGE_OUTSIDE_ROOT = "image_outside_root"
    UNDECODABLE_IMAGE = "undecodable_image"
    TRUNCATED_IMAGE = "truncated_image"
    IMAGE_TOO_SMALL = "image_too_small"
    IMAGE_TOO_LARGE = "image_too_large"  # byte size, pixel count or decompression bomb
    EMPTY_CONVERSATION = "empty_conversation"
    NON_ALTERNATING_CONVERSATION = "non_alternating_conversation"
    IMAGE_PLACEHOLDER_MISMATCH = "image_placeholder_mismatch"
    EMPTY_ASSISTANT_TURN = "empty_assistant_turn"
    TOO_LONG = "too_long"
    DUPLICATE = "duplicate"


class Rejected(Exception):
    """A record failed a check; ``detail`` says what, for a person."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


def malformed(detail: str) -> Rejected:
    return Rejected(Reason.MALFORMED_RECORD, detail)
