"""A per-row result cache (JSON lines) so an interrupted evaluation resumes where it stopped.

The first line records the settings that produced the results; reopening with other settings is an
error rather than a silent mix. A torn last line (the process died mid-write) is ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmoe.eval.errors import BenchmarkError


class RowCache:
    def __init__(self, path: Path, settings: dict[str, Any], fresh: bool = False) -> None:
        self.path, self.settings = path, settings
        self.values: dict[int, Any] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not fresh:
            self._read()
        else:
            path.write_text(json.dumps({"settings": settings}, ensure_ascii=False) + "\n")

    def _read(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            stored = json.loads(lines[0])["settings"]
        except (IndexError, ValueError, KeyError, TypeError):
            raise BenchmarkError(str(self.path), "is not an evaluation cache (delete it or pass --fresh)") from None
        if stored != self.settings:
            changed = sorted(k for k in set(stored) | set(self.settings) if stored.get(k) != self.settings.get(k))
            raise BenchmarkError(
                str(self.path), f"was written with other settings ({', '.join(changed)}); use another --out or --fresh"
            )
        for line in lines[1:]:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            self.values[int(item["index"])] = item["value"]

    def add(self, values: dict[int, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            for index, value in values.items():
                handle.write(json.dumps({"index": index, "value": value}, ensure_ascii=False) + "\n")
        self.values.update(values)

    def __contains__(self, index: int) -> bool:
        return index in self.values
