"""Errors about benchmark and prediction files, always naming the file and, when known, row and column."""

from __future__ import annotations

from mmoe.errors import MMoEError


class BenchmarkError(MMoEError, ValueError):
    """A benchmark or predictions file that cannot be used as it is."""

    def __init__(self, source: str, message: str, row: int | None = None, index: int | str | None = None, column: str | None = None):
        self.source, self.row, self.index, self.column = source, row, index, column
        where = [source]
        if row is not None:
            where.append(f"row {row}" + (f" (index {index})" if index is not None else ""))
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}")


class ImageDataError(BenchmarkError):
    """A row's image cell holds data that is not a readable image (bad base64, not an image, too large);
    ``reason`` is the ``mmoe.images`` code."""

    reason = "undecodable_image"


class MissingImageError(BenchmarkError):
    """A row's image cell names a file that does not exist or lies outside the image root."""

    reason = "missing_image"
