"""Image cells of a TSV benchmark: base64 data, ``[...]`` lists of it, file paths, and pointer cells that
name the row holding the image (VLMEvalKit stores each image once; circular copies point to it)."""

from __future__ import annotations

import ast
import base64
import binascii
from pathlib import Path

from mmoe.eval.errors import BenchmarkError, ImageDataError, MissingImageError
from mmoe.images import EVAL_LIMITS, MISSING, OUTSIDE_ROOT, ImageError, ImageLimits, read_file, resolve_in_root, verify

POINTER_MAX_CHARS = 64  # VLMEvalKit: an image cell this short names another row


def cell(record: dict, names: dict[str, str], key: str) -> str:
    """The stripped text of normalised column ``key`` in ``record`` (``""`` when the column is absent)."""
    column = names.get(key)
    if column is None:
        return ""
    value = record[column]
    return "" if value is None else str(value).strip()


class ImageResolver:
    """Decode each row's image cell once; follow pointer cells to the row that holds the data.

    ``indices`` holds each row's ``index`` (None for a row whose index is unusable, which no pointer
    can then reach). ``limits`` are the checks every image passes (``limits.decode``: decoded in full).
    Errors name the row whose cell is wrong."""

    def __init__(self, records: list[dict], names: dict[str, str], indices: list[int | None], source: str, base_dir: Path,
                 *, limits: ImageLimits = EVAL_LIMITS):
        self.records, self.names, self.source, self.base_dir, self.limits = records, names, source, base_dir, limits
        self.position = {index: i for i, index in enumerate(indices) if index is not None}
        self.indices = indices
        self.cache: dict[int, tuple[bytes, ...]] = {}

    def __call__(self, i: int) -> tuple[bytes, ...]:
        """The image bytes of row ``i`` (0-based)."""
        chain: list[int] = []
        j = i
        while j not in self.cache:
            if j in chain:
                raise self._error(i, "image pointers form a cycle")
            chain.append(j)
            target = self._pointer(j)
            if target is None:
                self.cache[j] = self._decode(j)
            else:
                j = target
        for k in chain:
            self.cache[k] = self.cache[j]
        return self.cache[i]

    def _error(self, i: int, message: str, kind: type[BenchmarkError] = BenchmarkError) -> BenchmarkError:
        column = self.names.get("image", self.names.get("image_path"))
        return kind(self.source, message, row=i + 1, index=self.indices[i], column=column)

    def _pointer(self, i: int) -> int | None:
        if "image" not in self.names:
            return None
        text = cell(self.records[i], self.names, "image")
        if not text:
            raise self._error(i, "empty image cell")
        if len(text) > POINTER_MAX_CHARS or text.startswith("["):
            return None
        try:
            target = int(float(text))
        except ValueError:
            raise self._error(i, f"{text!r} is neither base64 image data nor the index of another row") from None
        if target not in self.position:
            raise self._error(i, f"image points to index {target}, which no row has")
        return self.position[target]

    def _decode(self, i: int) -> tuple[bytes, ...]:
        if "image" not in self.names:
            return tuple(self._read_path(i, p) for p in self._items(i, cell(self.records[i], self.names, "image_path")))
        return tuple(self._base64(i, item) for item in self._items(i, cell(self.records[i], self.names, "image")))

    def _items(self, i: int, text: str) -> list[str]:
        if not text:
            raise self._error(i, "empty image cell")
        if not text.startswith("["):
            return [text]
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise self._error(i, "image cell starts with '[' but is not a list of strings") from None
        if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
            raise self._error(i, "image cell starts with '[' but is not a non-empty list of strings")
        return items

    def _base64(self, i: int, text: str) -> bytes:
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self._error(i, f"bad base64 image data ({exc})", ImageDataError) from None
        return self._check_image(i, data)

    def _read_path(self, i: int, text: str) -> bytes:
        """A file inside the image root (``mmoe.images`` path policy: symlinks resolved, regular files only)."""
        try:
            data = read_file(resolve_in_root(self.base_dir, text), self.limits, text)
        except ImageError as exc:
            kind = MissingImageError if exc.reason in (MISSING, OUTSIDE_ROOT) else ImageDataError
            raise self._image_error(i, f"image file {exc}", kind, exc.reason) from None
        return self._check_image(i, data)

    def _check_image(self, i: int, data: bytes) -> bytes:
        """Decoded here (with ``limits.decode``), so a file that loads is a file that evaluates (truncation found up front)."""
        try:
            verify(data, self.limits, "image")
        except ImageError as exc:
            raise self._image_error(i, str(exc), ImageDataError, exc.reason) from None
        return data

    def _image_error(self, i: int, message: str, kind: type[BenchmarkError], reason: str) -> BenchmarkError:
        error = self._error(i, message, kind)
        error.reason = reason
        return error
