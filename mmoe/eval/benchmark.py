"""The in-memory form of a multiple-choice benchmark: validated rows plus the file's own cells."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from PIL import Image

from mmoe.images import EVAL_LIMITS, decode

OFFSET = 1_000_000


@dataclass(frozen=True)
class MCQRow:
    """One line of a benchmark. ``options`` maps letters to texts in letter order (unused letters absent)."""

    index: int
    question: str
    options: dict[str, str]
    images: tuple[bytes, ...]
    hint: str | None = None
    answer: str | None = None
    category: str | None = None
    l2_category: str | None = None
    split: str | None = None
    language: str = "en"
    g_index: int | None = None
    row: int = 0
    cells: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def group(self) -> int:
        """The question this line belongs to (rotations of one question share it)."""
        return self.g_index if self.g_index is not None else self.index % OFFSET

    def load_images(self) -> list[Image.Image]:
        """The row's images as RGB PIL images, decoded as everywhere else (``mmoe.images``)."""
        return [decode(data, EVAL_LIMITS, f"row {self.row} (index {self.index}) image {i}") for i, data in enumerate(self.images)]


@dataclass
class Benchmark:
    """A loaded benchmark file. ``columns`` are the file's column names (image excluded), in order;
    ``names`` maps the normalised names the code uses (``l2-category``) to the file's spelling."""

    name: str
    source: str
    language: str
    rows: list[MCQRow]
    columns: list[str]
    names: dict[str, str]
    has_answers: bool

    @property
    def has_rotations(self) -> bool:
        return any(row.index != row.group for row in self.rows)

    def by_index(self) -> dict[int, MCQRow]:
        return {row.index: row for row in self.rows}

    def __len__(self) -> int:
        return len(self.rows)
