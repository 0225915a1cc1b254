"""Open a prepared dataset (an ``mmoe prep`` output directory) as a memory-mapped ``datasets.Dataset``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmoe.data.writer import SHARD_PATTERN
from mmoe.errors import MMoEError


class PreparedDatasetError(MMoEError, ValueError):
    """The directory is not an ``mmoe prep`` output."""


@dataclass
class Prepared:
    """The records (Arrow, memory-mapped: larger than memory is fine), the manifest, the image roots per source."""

    path: Path
    records: Any  # datasets.Dataset
    manifest: dict[str, Any]
    image_roots: dict[str, str | None]

    def __len__(self) -> int:
        return len(self.records)


def read_manifest(path: str | Path) -> dict[str, Any]:
    manifest = Path(path) / "manifest.json"
    if not manifest.is_file():
        raise PreparedDatasetError(f"{path} is not a prepared dataset (no manifest.json); run `mmoe prep` first")
    return json.loads(manifest.read_text(encoding="utf-8"))


def load_prepared(path: str | Path, image_roots: dict[str, str] | None = None) -> Prepared:
    """Open ``path``; ``image_roots`` (source name -> directory) overrides the roots recorded at prep time."""
    import datasets

    path = Path(path)
    manifest = read_manifest(path)
    files = sorted(path.glob(SHARD_PATTERN))
    if files:
        records = datasets.concatenate_datasets([datasets.Dataset.from_file(str(f)) for f in files])
    else:
        from mmoe.data.writer import SCHEMA

        records = datasets.Dataset(datasets.table.InMemoryTable(SCHEMA.empty_table()))
    roots = {name: info.get("image_root") for name, info in manifest.get("sources", {}).items()}
    roots.update(image_roots or {})
    return Prepared(path, records, manifest, roots)
