"""Read a table file (TSV as VLMEvalKit writes it, CSV, XLSX, JSON lines) into a frame of strings."""

from __future__ import annotations

import string
from pathlib import Path

import pandas as pd

from mmoe.eval.errors import BenchmarkError


def read_table(path: str | Path) -> pd.DataFrame:
    """Every cell as a string; empty cells stay ``""`` (texts such as "None" or "NA" are kept as text)."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(str(path), "file not found")
    if path.stat().st_size == 0:
        raise BenchmarkError(str(path), "is empty (no header, no rows)")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tsv", ".csv", ".txt"):
            frame = pd.read_csv(path, sep="," if suffix == ".csv" else "\t", dtype=str, keep_default_na=False)
        elif suffix == ".xlsx":
            frame = pd.read_excel(path, dtype=str, keep_default_na=False)
        elif suffix in (".jsonl", ".json"):
            frame = pd.read_json(path, lines=suffix == ".jsonl", dtype=False).map(_json_cell)
        else:
            raise BenchmarkError(str(path), f"unsupported file type {suffix!r} (use .tsv, .csv, .xlsx or .jsonl)")
    except (pd.errors.ParserError, ValueError, ImportError, UnicodeDecodeError) as exc:
        if isinstance(exc, BenchmarkError):
            raise
        raise BenchmarkError(str(path), f"cannot be read as a table: {exc}") from exc
    if len(frame) == 0:
        raise BenchmarkError(str(path), "has a header but no rows")
    return frame


def _json_cell(value) -> str:
    """A JSON value as a TSV-style string: ``null`` (or a missing key) is an empty cell, not ``"None"``/``"nan"``."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def normalised_names(frame: pd.DataFrame, source: str) -> dict[str, str]:
    """Map VLMEvalKit's normalised column names to the file's: single capital letters stay, the rest is
    lower-cased (``L2-category`` -> ``l2-category``). Two columns that normalise alike are an error."""
    names: dict[str, str] = {}
    for column in frame.columns:
        column = str(column)
        key = column if column in string.ascii_uppercase else column.strip().lower()
        if key in names:
            raise BenchmarkError(source, f"columns {names[key]!r} and {column!r} both mean {key!r}", column=column)
        names[key] = column
    return names


def parse_index(text: str) -> int:
    """An ``index`` cell as an integer (``7`` or ``7.0``); ``ValueError`` for anything else."""
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"{text!r} is not an integer")
    return int(value)
