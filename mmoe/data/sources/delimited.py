"""CSV / TSV files read record by record, so one bad row is reported and every other row is kept.

A record whose field count differs from the header's (a stray tab, a missing cell) is a ``Rejected``
that names its line; it is never truncated or padded. A quote that opens a cell and is never closed
would swallow the rest of the file: its first line is reported and parsing restarts on the next line.
Bytes that are not UTF-8 are refused per record.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmoe.data.reasons import Rejected, malformed

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Row:
    """Record ``number`` (0-based, header excluded) starting at file ``line`` (1-based): its cells, or why not."""

    number: int
    line: int
    cells: list[str] | Rejected


class _Lines:
    """The file's lines with a movable position, so parsing can restart after a runaway quote."""

    def __init__(self, lines: list[str]) -> None:
        self.lines, self.pos = lines, 0

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def delimiter_for(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def read_delimited(path: str | Path) -> tuple[list[str], Iterator[Row]]:
    """(header, rows). The header is the first record; an empty file has no header and no rows."""
    path = Path(path)
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
        lines = _Lines(f.read().splitlines(keepends=True))
    reader = csv.reader(lines, delimiter=delimiter_for(path))
    header = next(reader, [])
    return header, _rows(reader, lines, len(header))


def _rows(reader, lines: _Lines, width: int) -> Iterator[Row]:
    number = 0
    while True:
        start = lines.pos
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            cells, problem = None, f"cannot be parsed ({exc})"
        else:
            if not any(c.strip() for c in cells):
                continue  # blank line
            problem = None if len(cells) == width else f"{len(cells)} fields, the header has {width}"
        spanned = lines.pos - start
        if problem is not None and spanned > 1:
            problem += f" (a quote opened on this line runs over {spanned} lines; parsing restarts on the next line)"
            lines.pos = start + 1
        if problem is None and any(_SURROGATE.search(c) for c in cells):
            problem = "holds bytes that are not valid UTF-8"
        yield Row(number, start + 1, malformed(f"line {start + 1}: {problem}") if problem else cells)
        number += 1
