"""Fixtures: messy LLaVA-style inputs covering every rejection reason, built fresh in tmp dirs."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
from PIL import Image

from mmoe.data.config import parse_prep_config


def _png(path: Path, size=(32, 32), colour=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _conv(question: str = "<image>\nWhat colour is the square?", answer: str = "Red.") -> list[dict]:
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


def build_messy(root: Path) -> tuple[list[object], dict[int, str], list[str]]:
    """Records (JSON-able objects or raw byte strings), expected reasons by position, ids kept."""
    images = root / "images"
    _png(images / "ok1.png")
    _png(images / "ok2.png", colour=(20, 200, 40))
    _png(images / "ok3.png", colour=(20, 40, 200))
    _png(images / "tiny.png", size=(3, 3))
    (images / "not_an_image.jpg").write_bytes(b"this is text, not a JPEG")
    full = images / "full.png"
    _png(full, size=(64, 64))
    (images / "truncated.png").write_bytes(full.read_bytes()[:-40])
    with open(images / "sparse.jpg", "wb") as f:  # 1 GiB of nothing posing as a JPEG: refused by its size, unread
        f.truncate(1 << 30)
    # a PNG header claiming 100000 x 100000 pixels (a decompression bomb)
    bomb = bytearray(full.read_bytes())
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    (images / "bomb.png").write_bytes(bytes(bomb))
    (root / "outside.png").write_bytes(full.read_bytes())

    good = lambda i, img="ok1.png", q=None: {  # noqa: E731
        "id": f"good-{i}", "image": img, "conversations": _conv(q or f"<image>\nWhat colour is square number {i}?")
    }
    rows: list[object] = [
        good(0),
        {"id": "missing-img", "image": "nope.png", "conversations": _conv()},
        {"id": "undecodable", "image": "not_an_image.jpg", "conversations": _conv()},
        {"id": "truncated", "image": "truncated.png", "conversations": _conv()},
        {"id": "too-small", "image": "tiny.png", "conversations": _conv()},
        {"id": "bomb", "image": "bomb.png", "conversations": _conv()},
        {"id": "escape", "image": "../outside.png", "conversations": _conv()},
        {"id": "no-conv", "image": "ok1.png"},
        {"id": "bad-type", "image": "ok1.png", "conversations": "hello"},
        {"id": "empty-conv", "image": "ok1.png", "conversations": []},
        {"id": "non-alt", "image": "ok1.png", "conversations": [_conv()[0], _conv()[0]]},
        {"id": "two-placeholders", "image": "ok1.png", "conversations": _conv("<image>\n<image>\nCompare.")},
        {"id": "empty-answer", "image": "ok1.png", "conversations": _conv(answer="   ")},
        {"id": "long", "image": "ok2.png", "conversations": _conv(answer="word " * 400)},
        good(0),  # duplicate of the first record
        b'{"id": "broken-json", "image": "ok1.png", "conversations": [}',
        b'{"id": "latin1", "image": "ok1.png", "conversations": [{"from": "human", "value": "<image>\\ncaf\xe9?"}, {"from": "gpt", "value": "yes"}]}',
        {"id": "sparse", "image": "sparse.jpg", "conversations": _conv()},
        good(1, "ok2.png"),
        {"id": "multi", "image": ["ok1.png", "ok3.png"], "conversations": _conv("<image>\n<image>\nWhich is blue?", "The second.")},
        {"id": "text-only", "conversations": _conv("What is two plus two?", "Four.")},
        good(2, "ok3.png"),
    ]
    expected = {
        1: "missing_image", 2: "undecodable_image", 3: "truncated_image", 4: "image_too_small", 5: "image_too_large",
        6: "image_outside_root", 7: "malformed_record", 8: "malformed_record", 9: "empty_conversation",
        10: "non_alternating_conversation", 11: "image_placeholder_mismatch", 12: "empty_assistant_turn",
        13: "too_long", 14: "duplicate", 15: "malformed_record", 16: "malformed_record", 17: "image_too_large",
    }
    kept = ["good-0", "good-1", "multi", "text-only", "good-2"]
    return rows, expected, kept


def _encode(row: object) -> bytes:
    return row if isinstance(row, bytes) else json.dumps(row, ensure_ascii=False).encode()


def write_array(rows: list[object], path: Path) -> Path:
    path.write_bytes(b"[\n" + b",\n".join(_encode(r) for r in rows) + b"\n]\n")
    return path


def write_jsonl(rows: list[object], path: Path) -> Path:
    path.write_bytes(b"\n".join(_encode(r) for r in rows) + b"\n")
    return path


@pytest.fixture
def messy(tmp_path: Path):
    rows, expected, kept = build_messy(tmp_path)
    return tmp_path, rows, expected, kept


def prep_config(path: Path, **extra) -> object:
    raw = {
        "sources": [{"type": "llava", "path": str(path), "image_root": str(path.parent / "images")}],
        "validation": {"max_tokens": 1024},
        "tokenizer": {"tokens_per_image": 16},
        "langid": {"languages": ["en", "pt", "es", "ru", "mk", "zh", "ar", "tr"]},
        **extra,
    }
    return parse_prep_config(raw)
