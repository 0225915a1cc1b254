"""Source readers: each yields ``Record`` or ``Failure`` objects in file order."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from mmoe.data.records import Failure, Record
from mmoe.data.sources.captions import read_captions
from mmoe.data.sources.hf import read_hf
from mmoe.data.sources.llava import read_llava
from mmoe.data.sources.mcq_tsv import read_mcq_tsv
from mmoe.data.sources.sharegpt import read_sharegpt

SOURCE_TYPES = ("llava", "sharegpt", "hf", "captions", "mcq_tsv", "synthetic")


def read_source(kind: str, path: str, name: str, cfg: Any, root: Path | None) -> tuple[Iterator[Record | Failure], Path | None]:
    """The reader for ``kind`` over ``path`` with the source config's options; returns (items, image root)."""
    language = cfg.language
    if kind == "llava":
        return read_llava(path, name, language, getattr(cfg, "image_first", True)), root
    if kind == "sharegpt":
        return read_sharegpt(path, name, language, cfg.image_first), root
    if kind == "captions":
        return read_captions(path, name, language, cfg.image_column, cfg.caption_column, cfg.prompt), root
    if kind == "mcq_tsv":
        return read_mcq_tsv(path, name, language, root), root
    if kind == "hf":
        return read_hf(path, name, language, cfg.split, cfg.subset, cfg.image_column, cfg.caption_column, cfg.prompt), root
    raise ValueError(f"unknown source type {kind!r}; choose one of {', '.join(SOURCE_TYPES)}")


__all__ = ["SOURCE_TYPES", "read_source", "read_captions", "read_hf", "read_llava", "read_mcq_tsv", "read_sharegpt"]
