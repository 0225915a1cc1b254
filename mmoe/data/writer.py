"""Prepared datasets on disk: Arrow stream shards (memory-mapped on load), a manifest, a report.

Layout of an output directory::

    data-00000.arrow ...   records (Arrow IPC stream; ``datasets.Dataset.from_file`` reads each)
    manifest.json          totals, counts per source / language / reason, token statistics, config
    report.json            one entry per rejected record: source, id, line, reason, detail, file
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa

from mmoe.data.records import Failure, Record

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("source", pa.string()),
    ("position", pa.int64()),
    ("language", pa.string()),
    ("detected_language", pa.string()),
    ("conversations", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
    ("images", pa.list_(pa.struct([("path", pa.string()), ("bytes", pa.binary())]))),
    ("num_images", pa.int32()),
    ("num_tokens", pa.int32()),
    ("num_text_tokens", pa.int32()),
    ("metadata", pa.string()),
    ("key", pa.uint64()),
])

SHARD_PATTERN = "data-*.arrow"


def record_row(record: Record, *, language: str, detected: str, num_tokens: int, num_text_tokens: int, key: int) -> dict[str, Any]:
    return {
        "id": record.id,
        "source": record.source,
        "position": record.position,
        "language": language,
        "detected_language": detected,
        "conversations": [{"role": t.role, "content": t.content} for t in record.conversations],
        "images": [{"path": im.path, "bytes": im.data} for im in record.images],
        "num_images": len(record.images),
        "num_tokens": num_tokens,
        "num_text_tokens": num_text_tokens,
        "metadata": json.dumps(record.metadata, ensure_ascii=False, sort_keys=True, default=str),
        "key": key,
    }


class ShardWriter:
    """Writes rows in shards of ``shard_size`` records and counts what it wrote."""

    def __init__(self, directory: Path, shard_size: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        self.shards: list[dict[str, Any]] = []
        self._rows: list[dict[str, Any]] = []
        self.count = 0
        self.languages: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.lengths = array("i")

    def write(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        self.count += 1
        self.languages[row["language"]] += 1
        self.sources[row["source"]] += 1
        self.lengths.append(row["num_tokens"])
        if len(self._rows) >= self.shard_size:
            self.flush()

    def write_table(self, table: pa.Table) -> None:
        for row in table.to_pylist():
            self.write(row)

    def flush(self) -> None:
        if not self._rows:
            return
        name = f"data-{len(self.shards):05d}.arrow"
        table = pa.Table.from_pylist(self._rows, schema=SCHEMA)
        with pa.OSFile(str(self.directory / name), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA) as stream:
            stream.write_table(table)
        self.shards.append({"file": name, "records": len(self._rows)})
        self._rows = []

    def close(self) -> None:
        self.flush()


def read_shard(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


class ReportWriter:
    """Streams ``report.json`` (a JSON list) so millions of rejections never sit in memory."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "w", encoding="utf-8", errors="backslashreplace")
        self.file.write("[")
        self.count = 0

    def write(self, failure: Failure) -> None:
        entry = {
            "source": failure.source,
            "id": failure.id,
            "line": failure.position,
            "reason": failure.error.reason.value,
            "detail": failure.error.detail,
            "file": failure.file,
        }
        self.file.write(("\n" if self.count == 0 else ",\n") + json.dumps(entry, ensure_ascii=False, default=str))
        self.count += 1

    def close(self) -> None:
        self.file.write("\n]\n" if self.count else "]\n")
        self.file.close()


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8")
