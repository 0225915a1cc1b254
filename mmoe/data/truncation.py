"""Fit an encoded conversation into ``max_length`` without ever cutting through an image's tokens.

First whole trailing exchanges (a user turn and its reply) are dropped while more than one
remains; if the rest is still too long, the text is cut at the limit, and an image whose tokens the
cut would split is dropped whole (with every later one). Images that lose their placeholders are
dropped from the sample too, so placeholders and pixels always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmoe.model.processor import Encoded, MMoEProcessor
from mmoe.model.splice import IGNORE_INDEX
from mmoe.tokenization.templates import Turn


@dataclass
class Fitted:
    encoded: Encoded
    truncated: bool  # turns were dropped or text was cut


def _drop_last_exchange(turns: list[Turn]) -> list[Turn] | None:
    body_start = 1 if turns and turns[0].role == "system" else 0
    if len(turns) - body_start <= 2:
        return None
    return turns[:-2]


def _cut(encoded: Encoded, max_length: int, image_token_id: int, tokens_per_image: int) -> Encoded:
    """Keep the first ``max_length`` tokens, moved back to an image boundary if that splits an image."""
    ids = encoded.input_ids
    cut = max_length
    run_start = cut
    while run_start > 0 and ids[run_start - 1] == image_token_id:
        run_start -= 1
    cut -= (cut - run_start) % tokens_per_image
    images = sum(1 for t in ids[:cut] if t == image_token_id) // tokens_per_image
    return Encoded(ids[:cut], encoded.labels[:cut], images)


def encode_within(processor: MMoEProcessor, turns: list[Turn], max_length: int) -> Fitted:
    """``processor.encode(turns)`` made to fit ``max_length`` (see the module docstring)."""
    encoded = processor.encode(turns)
    truncated = False
    while len(encoded.input_ids) > max_length:
        shorter = _drop_last_exchange(turns)
        if shorter is None:
            break
        turns, truncated = shorter, True
        encoded = processor.encode(turns)
    if len(encoded.input_ids) > max_length:
        encoded, truncated = _cut(encoded, max_length, processor.image_token_id, processor.tokens_per_image), True
    return Fitted(encoded, truncated)


def has_supervision(encoded: Encoded) -> bool:
    return any(label != IGNORE_INDEX for label in encoded.labels)
