"""Stream records out of a JSON array or a JSONL file without loading the file.

Both layouts yield ``(position, value)`` where ``position`` is the 0-based index of the element in
the array, or the 0-based line index in a JSONL file (blank lines count, but yield nothing). A record
that does not parse yields a ``Rejected`` instead of a value, and reading goes on with the next one.
Bytes that are not UTF-8 are kept as surrogate escapes so the record can still be read and then be
rejected by name.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import Any, Iterator

from mmoe.data.reasons import Rejected, malformed

CHUNK = 1 << 20
MAX_RECORD_CHARS = 256 << 20
_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\r\n]*")
_SCAN = re.compile(r'["\\\[\]{}]')
_SCAN_TOP = re.compile(r'["\\\[\]{},]')


def iter_json(path: str | Path) -> Iterator[tuple[int, Any | Rejected]]:
    """Records of ``path``, a JSON array (``[...]``) or JSON Lines, decided by the first character."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        yield from _ArrayReader(path).records()
    else:
        yield from _iter_lines(path)


def _iter_lines(path: str | Path) -> Iterator[tuple[int, Any | Rejected]]:
    with open(path, "rb") as f:
        for index, raw in enumerate(f):
            text = raw.decode("utf-8", errors="surrogateescape").lstrip("\ufeff").strip()
            if not text:
                continue
            try:
                yield index, json.loads(text)
            except json.JSONDecodeError as exc:
                yield index, malformed(f"invalid JSON line: {exc.msg} at column {exc.colno}")


class _ArrayReader:
    """An incremental parser for one top-level JSON array of records."""

    def __init__(self, path: str | Path) -> None:
        self.file = open(path, "rb")
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.buf = ""
        self.pos = 0
        self.eof = False

    def fill(self) -> int:
        """Drop consumed text, read one more chunk; return how far positions moved left."""
        shift = self.pos
        chunk = self.file.read(CHUNK)
        self.eof = not chunk
        self.buf = self.buf[shift:] + self.utf8.decode(chunk, final=self.eof)
        self.pos = 0
        return shift

    def skip_ws(self) -> bool:
        """Move past whitespace; False at the end of the file."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return True
            if self.eof:
                return False
            self.fill()

    def records(self) -> Iterator[tuple[int, Any | Rejected]]:
        try:
            yield from self._records()
        finally:
            self.file.close()

    def _records(self) -> Iterator[tuple[int, Any | Rejected]]:
        self.fill()
        self.buf = self.buf.lstrip("\ufeff")
        self.skip_ws()
        self.pos += 1  # the opening '['
        index = 0
        while self.skip_ws():
            char = self.buf[self.pos]
            if char == "]":
                return
            if index > 0:
                if char != ",":
                    yield index, malformed(f"expected ',' between records, found {char!r}")
                    self.skip_value()
                    index += 1
                    continue
                self.pos += 1
                if not self.skip_ws() or self.buf[self.pos] == "]":
                    return
            yield index, self.parse_value()
            index += 1

    def parse_value(self) -> Any | Rejected:
        while True:
            try:
                value, self.pos = _DECODER.raw_decode(self.buf, self.pos)
                return value
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(self.buf) - 1 or exc.msg.startswith("Unterminated string")
                if incomplete and not self.eof and len(self.buf) - self.pos < MAX_RECORD_CHARS:
                    self.fill()
                    continue
                self.skip_value()
                return malformed(f"invalid JSON: {exc.msg}")

    def skip_value(self) -> None:
        """Skip a broken element up to the next ',' or ']' outside it (strings respected, brackets matched)."""
        stack: list[str] = []
        in_string, i = False, self.pos
        while True:
            match = (_SCAN if in_string or stack else _SCAN_TOP).search(self.buf, i)
            if match is None:
                if self.eof:
                    self.pos = len(self.buf)
                    return
                i = len(self.buf) - self.fill()
                continue
            char, i = match.group(), match.end()
            if in_string:
                if char == "\\":
                    i += 1
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char in "[{":
                stack.append("]" if char == "[" else "}")
            elif char in "]}":
                if not stack:  # the array's own closing bracket
                    self.pos = i - 1
                    return
                while stack and stack.pop() != char:
                    pass  # an unclosed bracket inside the broken element
                if not stack:
                    self.pos = i
                    return
            elif char == ",":
                self.pos = i - 1
                return
